//! Server bytes, decoded message after message; each recorded message must
//! encode again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use recplay_proxy::pgwire::backend::BackendMessage;
use recplay_proxy::pgwire::backend::encode_backend;
use recplay_proxy::pgwire::recorded::Format;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((msg, used))) = BackendMessage::decode(rest) {
        assert!(used > 0 && used <= rest.len());
        let _ = msg.to_model(&[Format::Binary]);
        if let Some(model) = msg.to_model(&[]) {
            let mut out = BytesMut::new();
            if encode_backend(&model, &mut out).is_ok() {
                assert!(matches!(BackendMessage::decode(&out), Ok(Some((_, n))) if n == out.len()));
            }
        }
        rest = &rest[used..];
    }
});
