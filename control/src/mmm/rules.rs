//! mysql-mmm 2.2.1's rule set (`$RULESET` of MMM::Common::Config): the section types and the
//! variables each level accepts. Only the names matter here; defaults and requirements are
//! applied where the values are mapped.

/// The section types of mmm's rule set and the variables each accepts.
pub(super) struct Kind {
    pub(super) name: &'static str,
    pub(super) named: bool,
    pub(super) keys: &'static [&'static str],
}

pub(super) const TOP_KEYS: &[&str] = &[
    "this",
    "debug",
    "active_master_role",
    "max_kill_retries",
    "default_copy_method",
    "clone_dirs",
    // mysql-mmm after 2.2.1 (the chernomor fork); accepted so such files can be imported.
    "blocking_type",
    "iptables_block_cmd",
    "iptables_unblock_cmd",
];

pub(super) const KINDS: &[Kind] = &[
    Kind {
        name: "role",
        named: true,
        keys: &["mode", "hosts", "ips", "prefer"],
    },
    Kind {
        name: "monitor",
        named: false,
        keys: &[
            "ip",
            "port",
            "pid_path",
            "bin_path",
            "status_path",
            "ping_interval",
            "ping_ips",
            "flap_duration",
            "flap_count",
            "auto_set_online",
            "kill_host_bin",
            "careful_startup",
            "mode",
            "wait_for_other_master",
        ],
    },
    Kind {
        name: "socket",
        named: false,
        keys: &["type", "cert_file", "key_file", "ca_file"],
    },
    Kind {
        name: "copy_method",
        named: true,
        keys: &[
            "backup_command",
            "restore_command",
            "incremental_command",
            "incremental",
            "single_run",
            "true_copy",
        ],
    },
    Kind {
        name: "host",
        named: true,
        keys: &[
            "ip",
            "mode",
            "peer",
            "pid_path",
            "bin_path",
            "agent_port",
            "cluster_interface",
            "mysql_port",
            "mysql_pidfile",
            "mysql_rcscript",
            "mysql_cnf",
            "agent_user",
            "agent_password",
            "monitor_user",
            "monitor_password",
            "replication_user",
            "replication_password",
            "ssh_user",
            "ssh_port",
            "ssh_parameters",
            "tools_user",
            "tools_password",
            "backup_dir",
            "restore_dir",
            "lvm_bin_lvcreate",
            "lvm_bin_lvremove",
            "lvm_snapshot_size",
            "lvm_logical_volume",
            "lvm_volume_group",
            "lvm_mount_dir",
            "lvm_mount_opts",
        ],
    },
    Kind {
        name: "check",
        named: true,
        keys: &[
            "check_period",
            "trap_period",
            "timeout",
            "restart_after",
            "max_backlog",
        ],
    },
];

/// The four checks of mmm (and ha); `<check NAME>` accepts these and `default`.
pub const CHECK_NAMES: [&str; 4] = ["ping", "mysql", "rep_threads", "rep_backlog"];

pub(super) fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}
