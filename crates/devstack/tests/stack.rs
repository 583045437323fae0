//! End-to-end checks of the dev stack against the real PostgreSQL and nats-server
//! binaries (installed by `scripts/dev`/`scripts/test`). Each test uses its own data
//! directory and free ports, so they run in parallel with everything else.

use std::io::Read as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use carelog_devstack::{DevStack, DevStackConfig};

fn temp_data_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::env::temp_dir().join(format!(
        "carelog-devstack-test-{tag}-{}-{nanos:08x}",
        std::process::id()
    ))
}

fn psql_bin() -> PathBuf {
    let in_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("psql"))
            .find(|f| f.is_file())
    });
    in_path.unwrap_or_else(|| {
        let mut majors: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("psql not in PATH and no /usr/lib/postgresql")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        majors.sort();
        PathBuf::from(format!(
            "/usr/lib/postgresql/{}/bin/psql",
            majors.last().expect("no PostgreSQL installed")
        ))
    })
}

/// Runs `sql` through `psql URL`, the way a developer would, and returns the output.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new(psql_bin())
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .env_remove("PGPASSWORD")
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "psql {url} -c {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn port_of(url: &str) -> u16 {
    let after_host = url.split("127.0.0.1:").nth(1).expect("url on 127.0.0.1");
    after_host
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

/// Ports close a moment after the process exits; allow a little slack.
fn assert_closed(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while port_open(port) {
        assert!(Instant::now() < deadline, "{what} still listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nats_info(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to NATS");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn cleanup(data_dir: &Path, pg_data: &Path) {
    let _ = std::fs::remove_dir_all(data_dir);
    // The /tmp fallback used as root when the postgres account cannot reach data_dir.
    if let Some(root) = pg_data.parent() {
        if root
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("carelog-dev-"))
        {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn start_stop_restart_and_recover_from_crash() {
    let dir = temp_data_dir("cycle");

    // First run: fresh cluster.
    let mut s = DevStack::start(DevStackConfig::new(&dir)).await.unwrap();
    let pg_data = s.pg_data_dir().to_path_buf();
    let (app, admin, nats) = (s.database_url(), s.admin_database_url(), s.nats_url());
    assert_eq!(psql(&app, "select 1"), "1");
    assert_eq!(
        psql(
            &app,
            "select current_user || ' ' || current_database() || ' ' || rolsuper || ' ' || rolcreatedb \
             from pg_roles where rolname = current_user"
        ),
        "carelog carelog false true",
        "the app role must be an ordinary (non-superuser) role owning its database"
    );
    assert_eq!(
        psql(
            &admin,
            "select rolsuper from pg_roles where rolname = current_user"
        ),
        "t"
    );
    psql(
        &app,
        "create table kept (x int); insert into kept values (42)",
    );
    let (pg_port, nats_port) = (port_of(&app), port_of(&nats));
    assert!(nats_info(nats_port).starts_with("INFO "));
    assert!(nats_info(nats_port).contains("\"jetstream\":true"));

    s.stop().await.unwrap();
    s.stop().await.unwrap(); // idempotent
    assert_closed(pg_port, "PostgreSQL");
    assert_closed(nats_port, "nats-server");
    drop(s);

    // Second run on the same directory: data kept; stopping by drop works too.
    let s = DevStack::start(DevStackConfig::new(&dir)).await.unwrap();
    assert_eq!(psql(&s.database_url(), "select x from kept"), "42");
    let (pg_port, nats_port) = (port_of(&s.database_url()), port_of(&s.nats_url()));
    drop(s);
    assert_closed(pg_port, "PostgreSQL (after drop)");
    assert_closed(nats_port, "nats-server (after drop)");

    // A "crashed" run (never stopped) is cleaned up by the next start.
    let s = DevStack::start(DevStackConfig::new(&dir)).await.unwrap();
    let (pg_port, nats_port) = (port_of(&s.database_url()), port_of(&s.nats_url()));
    std::mem::forget(s);
    assert!(port_open(pg_port) && port_open(nats_port));
    let mut s = DevStack::start(DevStackConfig::new(&dir)).await.unwrap();
    assert_closed(pg_port, "stale PostgreSQL");
    assert_closed(nats_port, "stale nats-server");
    assert_eq!(psql(&s.database_url(), "select x from kept"), "42");
    s.stop().await.unwrap();

    cleanup(&dir, &pg_data);
}

/// As root, PostgreSQL runs as `postgres`/`nobody`; a data directory that account cannot
/// reach (like one under a 0700 /root) must still work, via the /tmp fallback.
#[tokio::test(flavor = "multi_thread")]
async fn root_with_unreachable_data_dir_falls_back_to_tmp() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("not root; nothing to test");
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let private = temp_data_dir("private");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = private.join("data");

    let mut s = DevStack::start(DevStackConfig::new(&dir)).await.unwrap();
    let pg_data = s.pg_data_dir().to_path_buf();
    assert!(
        pg_data.starts_with("/tmp") && !pg_data.starts_with(&private),
        "expected the /tmp fallback, got {}",
        pg_data.display()
    );
    assert_eq!(psql(&s.database_url(), "select 1"), "1");
    assert!(dir.join("pg.log").exists(), "the log stays in data_dir");
    s.stop().await.unwrap();

    cleanup(&private, &pg_data);
}
