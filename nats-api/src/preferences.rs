//! The user's preferences on NATS: `commands.preferences.set` and `queries.preferences.get` →
//! `lifeos.v1.Preferences`.

use std::sync::Arc;

use proto::v1::preferences_server::Preferences;

use crate::Route;

/// The Preferences routes, served by `service` (the same service gRPC serves).
pub fn routes<S: Preferences>(service: S) -> Vec<Route> {
    let s = Arc::new(service);
    const SERVICE: &str = "lifeos.v1.Preferences";
    vec![
        Route::unary(
            "commands.preferences.set",
            format!("{SERVICE}/SetPreferences"),
            &s,
            |s, r| s.set_preferences(r),
        ),
        Route::unary(
            "queries.preferences.get",
            format!("{SERVICE}/GetPreferences"),
            &s,
            |s, r| s.get_preferences(r),
        ),
    ]
}
