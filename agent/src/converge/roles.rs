//! Role IPs outside a pass: ClearBadRoles.

use super::{Agent, Outcome};
use crate::desired::RoleIp;
use crate::ip;

impl Agent {
    /// Removes role IPs present on the interface but not held (writer: read_only=1 + kill
    /// first). Returns the removed roles and the failures.
    pub async fn clear_bad_roles(
        &self,
        all_roles: &[RoleIp],
        writer_role: &str,
    ) -> Result<(Vec<RoleIp>, Vec<String>), String> {
        let _serial = self.change_lock.lock().await;
        let dev = self.cfg.cluster_interface.clone();
        let present = ip::list_v4(&dev)
            .await
            .map_err(|e| format!("could not check if IP is configured: {e}"))?;
        let held = self.lock().held.roles.clone();
        let mut removed = Vec::new();
        let mut failures = Vec::new();
        let mut db = self.apply_db.lock().await;
        for r in all_roles {
            if !present.contains(&r.ip) || held.iter().any(|h| h.ip == r.ip) {
                continue;
            }
            tracing::warn!(role = %r, "clearing bad role: its IP is on {dev} but this agent does not hold it");
            if !writer_role.is_empty() && r.name == writer_role {
                self.deny_write_and_kill(&mut db).await;
            }
            let t = std::time::Instant::now();
            let name = format!("remove ip {} ({})", r.ip, r.name);
            match crate::remove::del_role_ip(&self.cfg, r.ip).await {
                Ok(_) => {
                    self.record(&name, &Outcome::ok("cleared bad role"), t.elapsed());
                    removed.push(r.clone());
                }
                Err(e) => {
                    self.record(&name, &Outcome::err(e.clone()), t.elapsed());
                    failures.push(e);
                }
            }
        }
        Ok((removed, failures))
    }
}
