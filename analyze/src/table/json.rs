//! The JSON every subcommand prints or writes: the typed rows' serde form, pretty, one trailing
//! newline. Not the table's cells: those are rounded for reading, the JSON keeps every digit.
use serde::Serialize;

pub fn render<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}
