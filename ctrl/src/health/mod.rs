pub mod checker;
pub mod probe;
