//! A NATS prefix per test (`CARELOG_NATS_PREFIX`): every stream, subject and consumer a
//! test creates is named under it, and every stream under it is deleted when the test
//! ends, so tests share one NATS server without seeing each other.

use futures::TryStreamExt;
use uuid::Uuid;

/// One test's slice of NATS.
pub struct TestNats {
    /// The prefix, e.g. `t0190f3a47f1b7c3e_` (stream names may not contain dots).
    pub prefix: String,
    /// The server.
    pub url: String,
    /// A client connection.
    pub client: async_nats::Client,
}

impl TestNats {
    /// Connects to `NATS_URL` (default the local server) with a fresh prefix.
    pub async fn new() -> TestNats {
        let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
        let client = async_nats::connect(&url)
            .await
            .expect("NATS reachable at NATS_URL (default nats://127.0.0.1:4222)");
        TestNats {
            prefix: format!("t{}_", Uuid::now_v7().simple()),
            url,
            client,
        }
    }

    /// JetStream on this connection.
    pub fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client.clone())
    }

    /// The names of the streams under this test's prefix.
    pub async fn streams(&self) -> Vec<String> {
        stream_names(&self.jetstream(), &self.prefix).await
    }
}

async fn stream_names(js: &async_nats::jetstream::Context, prefix: &str) -> Vec<String> {
    js.stream_names()
        .try_collect::<Vec<String>>()
        .await
        .expect("list JetStream streams")
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        let cleaned = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = async_nats::connect(&url).await.ok()?;
                let js = async_nats::jetstream::new(client);
                for name in stream_names(&js, &prefix).await {
                    js.delete_stream(&name).await.ok()?;
                }
                Some(())
            })
        })
        .join();
        if !matches!(cleaned, Ok(Some(()))) {
            eprintln!(
                "warning: could not delete NATS streams under {}",
                self.prefix
            );
        }
    }
}

#[tokio::test]
async fn a_tests_streams_are_deleted_when_it_ends() {
    let nats = TestNats::new().await;
    let js = nats.jetstream();
    let name = format!("{}EVENTS", nats.prefix);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![format!("{}events.>", nats.prefix)],
        ..Default::default()
    })
    .await
    .expect("create stream");
    assert_eq!(nats.streams().await, std::slice::from_ref(&name));
    let (prefix, url) = (nats.prefix.clone(), nats.url.clone());
    drop(nats);

    let client = async_nats::connect(&url).await.unwrap();
    let left = stream_names(&async_nats::jetstream::new(client), &prefix).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}
