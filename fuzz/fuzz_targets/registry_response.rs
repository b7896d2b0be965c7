//! The registry client's pure response handling: image references, `WWW-Authenticate`
//! challenges and `Link` pagination headers (the first line of the input is the challenge).
#![no_main]

use himg::registry::{Reference, interpret_response_headers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = text.parse::<Reference>();
    let (challenge, link) = text.split_once('\n').unwrap_or((text, text));
    let _ = interpret_response_headers(challenge, link);
});
