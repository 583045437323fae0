//! Identity over HTTP: registration, login, sessions (first checks; more in auth_*).

use serde_json::json;

use crate::support::app::PASSWORD;
use crate::support::TestApp;

#[tokio::test]
async fn a_user_registers_logs_in_and_sees_themselves() {
    let app = TestApp::spawn().await;
    let id = app.register("Ada@Example.org", "DOCTOR").await;
    let s = app.login("ada@example.org").await;
    assert_eq!(s.user_id, id);
    let me = app.get("/api/auth/me", Some(&s.token)).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["data"]["email"], "ada@example.org");
    assert_eq!(me.body["data"]["roles"], json!(["BASE:DOCTOR"]));
    assert_eq!(me.header("cache-control"), Some("no-store"));
    let wrong = app
        .post(
            "/api/auth/login",
            json!({"email": "ada@example.org", "password": format!("{PASSWORD}x")}),
            None,
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "UNAUTHORIZED"));
}
