//! Measures the largest single allocation a piece of code makes, so a test
//! can prove a decoder never sizes a buffer from a length or count it read
//! (a peer claiming 1 GiB must not cost 1 GiB).
//!
//! This needs a global allocator, which is necessarily `unsafe`; it is
//! compiled into the test binary only and only forwards to the system
//! allocator after noting the size in a thread-local cell (tests run in
//! parallel threads, so a global counter would see other tests' work).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Measuring;

thread_local! {
    /// Largest allocation on this thread since the last [`largest_allocation`].
    /// Const-initialised and without a destructor, so reading it never
    /// allocates.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call forwards to `System` with the caller's arguments
// unchanged; the only addition is a thread-local store that cannot
// allocate.
unsafe impl GlobalAlloc for Measuring {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static MEASURING: Measuring = Measuring;

/// Runs `f` and returns its result with the size of the largest single
/// allocation it made on this thread.
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

/// The most a decoder may allocate at once for an input of `len` bytes:
/// a small constant plus a fixed factor of the input (a DataRow of empty
/// values is 4 bytes a value on the wire and 24 in memory, and a growing
/// vector may double that).
pub fn allowed_for(len: usize) -> usize {
    4096 + 64 * len
}
