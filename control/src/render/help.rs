//! `help`: mmm_control's command list.
//!
//! In mysql-mmm the monitor answers `help`; ha-control prints the same text locally (there is
//! no Help RPC, and help must work when the monitor is down).

/// mysql-mmm's help reply, verbatim (it ends with a newline; mmm_control adds another).
pub const HELP: &str = "\
Valid commands are:
    help                              - show this message
    ping                              - ping monitor
    show                              - show status
    checks [<host>|all [<check>|all]] - show checks status
    set_online <host>                 - set host <host> online
    set_offline <host>                - set host <host> offline
    mode                              - print current mode.
    set_active                        - switch into active mode.
    set_manual                        - switch into manual mode.
    set_passive                       - switch into passive mode.
    move_role [--force] <role> <host> - move exclusive role <role> to host <host>
                                        (Only use --force if you know what you are doing!)
    set_ip <ip> <host>                - set role with ip <ip> to host <host>
";

/// The same list as data: (command, usage, description). Used by `--json help`.
pub const COMMANDS: [(&str, &str, &str); 12] = [
    ("help", "help", "show this message"),
    ("ping", "ping", "ping monitor"),
    ("show", "show", "show status"),
    (
        "checks",
        "checks [<host>|all [<check>|all]]",
        "show checks status",
    ),
    ("set_online", "set_online <host>", "set host <host> online"),
    (
        "set_offline",
        "set_offline <host>",
        "set host <host> offline",
    ),
    ("mode", "mode", "print current mode."),
    ("set_active", "set_active", "switch into active mode."),
    ("set_manual", "set_manual", "switch into manual mode."),
    ("set_passive", "set_passive", "switch into passive mode."),
    (
        "move_role",
        "move_role [--force] <role> <host>",
        "move exclusive role <role> to host <host>",
    ),
    (
        "set_ip",
        "set_ip <ip> <host>",
        "set role with ip <ip> to host <host>",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_text_agree() {
        for (_, usage, description) in COMMANDS {
            let line = format!("    {usage:<33} - {description}\n");
            assert!(HELP.contains(&line), "missing {line:?}");
        }
        assert_eq!(HELP.lines().count(), 1 + COMMANDS.len() + 1);
    }
}
