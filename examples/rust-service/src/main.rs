//! greeter: a tiny HTTP service (the Rust example of `examples/rust-service.himg`).
//!
//! `greeter` listens on `0.0.0.0:$PORT` (8080 by default) and answers every request with one JSON
//! line; `greeter --once` prints that line and exits (the image's test runs it that way).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn body(requests: u64) -> String {
    let mut count = itoa::Buffer::new();
    let mut ratio = ryu::Buffer::new();
    format!(
        "{{\"greeting\":\"hello from rust\",\"requests\":{},\"ratio\":{}}}\n",
        count.format(requests),
        ratio.format(0.5)
    )
}

fn main() -> std::io::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--once") {
        print!("{}", body(0));
        return Ok(());
    }
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let listener = TcpListener::bind(("0.0.0.0", port.parse().unwrap_or(8080)))?;
    eprintln!("greeter listening on port {port}");
    for (served, stream) in listener.incoming().enumerate() {
        let mut stream = stream?;
        let mut request_line = String::new();
        BufReader::new(&stream).read_line(&mut request_line)?;
        let text = body(served as u64 + 1);
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
            text.len(),
            text
        )?;
    }
    Ok(())
}
