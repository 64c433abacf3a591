//! Two "instances" of an app (two connections) share one quota through Redis: together they
//! admit 5 per minute, not 5 each. (With Redis stopped, `connect` fails with a clear error;
//! `RedisStore::connect_lazy` would start anyway and decide by the `local` fail mode.)
//!
//! ```text
//! redis-server --port 6399 --save '' &
//! cargo run -p ratewall-redis --example fleet -- redis://127.0.0.1:6399
//! ```

use std::sync::Arc;

use ratewall::policy::{Policy, PolicyOptions};
use ratewall_redis::{Event, FailMode, RedisOptions, RedisPolicy, RedisStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_string());
    let options = RedisOptions {
        on_event: Some(Arc::new(|e: &Event<'_>| {
            eprintln!(
                "[ratewall] {:?}: {:?}",
                e.kind,
                e.error.map(|x| x.to_string())
            );
        })),
        ..RedisOptions::default()
    };
    // Two stores: two connections, as two processes of a fleet would have.
    let instances = [
        RedisStore::connect(&url, options.clone())?,
        RedisStore::connect(&url, options)?,
    ];
    let name = format!("fleet-demo-{}", std::process::id());
    let limiters = instances
        .iter()
        .map(|store| {
            let policy = Policy::parse(&name, "5/minute", PolicyOptions::default())?;
            Ok(RedisPolicy::new(store, policy, FailMode::Local)?)
        })
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    for i in 0..7 {
        let instance = i % 2;
        let outcome = limiters[instance].check("203.0.113.7", 1)?;
        let d = outcome.decision.decision();
        println!(
            "request {i} on instance {instance}: {} (remaining {}, by {:?})",
            if d.allowed { "200" } else { "429" },
            d.remaining,
            outcome.source
        );
    }
    println!("health: {:?}", instances[0].health());
    Ok(())
}
