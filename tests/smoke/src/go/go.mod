module example.org/h

go 1.22
