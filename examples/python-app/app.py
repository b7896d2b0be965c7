"""app: the Python example of examples/python-app.himg, run from its virtual environment."""

import json
import sys

import idna

print(
    json.dumps(
        {
            "greeting": "hello from python",
            "idna": idna.encode("bücher.example").decode("ascii"),
            "venv": sys.prefix != sys.base_prefix,
        }
    )
)
