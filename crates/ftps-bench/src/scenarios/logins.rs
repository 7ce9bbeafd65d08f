//! Logins: full TLS handshakes with USER and PASS, as many at a time as the plan says.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::client::{Control, Target};

/// Full TLS handshake + USER/PASS + QUIT for each account in `accounts`, `concurrency` at
/// a time; returns logins per second.
pub async fn logins(
    target: &Target,
    base: &Arc<rustls::ClientConfig>,
    accounts: &[(String, String)],
    concurrency: usize,
) -> Result<f64> {
    let accounts = Arc::new(accounts.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let accounts = accounts.clone();
        let next = next.clone();
        let base = base.clone();
        let addr = target.addr;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((user, password)) = accounts.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let mut c = Control::connect_tls(addr, &base).await?;
                c.user_pass(user, password)
                    .await
                    .with_context(|| format!("login {user}"))?;
                c.quit().await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(accounts.len() as f64 / t0.elapsed().as_secs_f64())
}
