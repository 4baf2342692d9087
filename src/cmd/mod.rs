//! The commands: one file each. A command takes its options (plain values
//! the command layer made from the arguments, the clock and the
//! environment), loads the project once, calls the stages, and returns a
//! report that `run` prints as text or JSON. Only this layer (and `run`)
//! touches the environment, the clock and the disk for its own sake.

pub(crate) mod check;
pub(crate) mod init;
pub(crate) mod preview;
pub(crate) mod send;
pub(crate) mod status;
pub(crate) mod suppressions;
