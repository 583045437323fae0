//! A private nats-server can be stopped and started again on the same port, keeps its
//! JetStream store across, and leaves nothing behind when dropped.

use std::io::Read as _;
use std::net::TcpStream;
use std::time::Duration;

use carelog_devstack::NatsServer;

fn greets(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).is_ok() && &buf == b"INFO "
}

#[tokio::test]
async fn stop_and_start_on_the_same_port_and_clean_up_on_drop() {
    let mut nats = NatsServer::temporary().await.expect("nats-server starts");
    let (port, dir) = (nats.port(), nats.dir().to_path_buf());
    assert!(nats.is_running() && greets(port));
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
    assert!(
        dir.join("nats").is_dir(),
        "JetStream store under the directory"
    );

    nats.stop().await.unwrap();
    nats.stop().await.unwrap(); // idempotent
    assert!(!nats.is_running() && !greets(port));

    nats.start().await.expect("starts again");
    assert_eq!(nats.port(), port, "same port");
    assert!(greets(port));

    drop(nats);
    assert!(!greets(port), "stopped on drop");
    assert!(!dir.exists(), "temporary directory removed on drop");
}
