//! Client bytes: the first byte picks the decode context, the rest is
//! decoded message after message as a connection would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recplay_proxy::pgwire::frontend::{AuthRequest, DecodeContext, FrontendMessage};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let auth = match pick % 5 {
        0 => None,
        1 => Some(AuthRequest::Password),
        2 => Some(AuthRequest::SaslInitial),
        3 => Some(AuthRequest::SaslContinue),
        _ => Some(AuthRequest::Gss),
    };
    let ctx = DecodeContext {
        awaiting_startup: pick & 0x80 != 0,
        auth,
    };
    while let Ok(Some((msg, used))) = FrontendMessage::decode(rest, &ctx) {
        assert!(used > 0 && used <= rest.len());
        let _ = msg.to_model();
        rest = &rest[used..];
    }
});
