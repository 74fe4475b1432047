//! Background work at a lower priority than the traffic.
//!
//! The PostgreSQL mock writer and the HTTP test materializer both turn
//! recorded bytes into files. Neither is on the traffic's path, so on a
//! busy machine they should take the CPU the forwarding (and the app and
//! database it serves) leaves over.

/// A background writer's nice value: above the traffic's (0 by default), so that on
/// a busy machine the connections' forwarding, and the app and database
/// they serve, come first, and the writer works in the gaps. It is never
/// starved: the queue is bounded, and once it is full the connections wait
/// for the writer (the PostgreSQL writer's queue and the HTTP journal are both bounded).
#[cfg(target_os = "linux")]
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`BACKGROUND_NICE`]
/// (Linux keeps a nice value per thread), unless it is lower already.
pub fn yield_to_traffic() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let me = Some(rustix::thread::gettid());
        let lowered = match getpriority_process(me) {
            Ok(now) if now < BACKGROUND_NICE => setpriority_process(me, BACKGROUND_NICE),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = lowered {
            tracing::debug!("a background writer keeps its scheduling priority: {e}");
        }
    }
}
