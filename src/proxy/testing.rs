//! The whole request pipeline in-process, for table tests: a configuration from YAML, the
//! real [`Proxy`] serving raw requests on a runtime of its own, functions answered by an
//! [`InMemoryLambda`], and what the client gets back byte for byte, with the metrics the
//! requests were counted in.

use super::Proxy;
use crate::config::environment::Environment;
use crate::config::Snapshot;
use crate::http::conn::Handler;
use crate::http::encode::{write_response, Response};
use crate::http::fields::{head_from_fields, PseudoHeaders};
use crate::http::head::{self, RequestHead};
use crate::http::request::Request;
use crate::http::Limits;
use crate::metrics::Registry;
use crate::upstream::invoker::{InMemoryLambda, InvokeCall};
use arc_swap::ArcSwap;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// The invokes a pipeline made: function name and payload, in order.
pub type Invokes = Rc<RefCell<Vec<(String, Vec<u8>)>>>;

/// A proxy serving one configuration with an in-memory Lambda.
pub struct Pipeline {
    proxy: Proxy<InMemoryLambda>,
    registry: Registry,
    runtime: RefCell<monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>>>,
    /// What each invoke sent: the function name and the payload.
    pub invokes: Invokes,
}

/// What the client got.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The head as written, status line to blank line.
    pub head: String,
    /// The body as written.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Pipeline {
    /// A pipeline serving `config` (a declarative document), every function answered by
    /// `function` (see [`crate::upstream::invoker::write_answer`]).
    pub fn new(
        config: &str,
        function: impl Fn(&InvokeCall<'_>, &mut Vec<u8>) + 'static,
    ) -> Result<Pipeline, String> {
        let config = crate::config::parse(config).map_err(|e| e.to_string())?;
        let (snapshot, _warnings) = Snapshot::build(config, &Environment::default());
        let invokes: Invokes = Rc::default();
        let seen = invokes.clone();
        let lambda = InMemoryLambda::new(move |call, out| {
            seen.borrow_mut()
                .push((call.function.to_string(), call.payload.to_vec()));
            function(call, out);
        });
        let mut pipeline = Pipeline::with_lambda(snapshot, lambda)?;
        pipeline.invokes = invokes;
        Ok(pipeline)
    }

    /// A pipeline serving `snapshot` with `lambda`, recording nothing of its own.
    pub fn with_lambda(snapshot: Snapshot, lambda: InMemoryLambda) -> Result<Pipeline, String> {
        let registry = Registry::default();
        let metrics = registry.register();
        let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
        let runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        Ok(Pipeline {
            proxy: Proxy::with_invoker(snapshot, lambda, metrics),
            registry,
            runtime: RefCell::new(runtime),
            invokes: Invokes::default(),
        })
    }

    /// Serves the raw request `raw` (head and body, from 127.0.0.1) into `resp`, its head
    /// parsed into `head`: both reused, so that this adds nothing to what the proxy itself
    /// allocates. Run it inside [`Pipeline::block_on`], as a connection's task runs requests.
    pub async fn handle(&self, raw: &[u8], head: &mut RequestHead, resp: &mut Response) {
        assert_eq!(
            head::parse(raw, &Limits::default(), head),
            Ok(true),
            "a complete head"
        );
        let req = Request {
            buf: raw,
            head,
            body: &raw[head.len..],
            peer: Some(std::net::IpAddr::from([127, 0, 0, 1])),
            secure: false,
        };
        let streamed = self.proxy.handle(req, resp).await;
        assert!(streamed.is_none(), "an in-memory Lambda does not stream");
    }

    /// Serves a request made of decoded fields, as an HTTP/2 stream gives them (see
    /// [`crate::http::fields`]), and returns the answer.
    pub fn send_fields(
        &self,
        pseudo: PseudoHeaders<'_>,
        fields: &[(&[u8], &[u8])],
        body: &[u8],
    ) -> Answer {
        let (mut buf, mut head) = (Vec::new(), RequestHead::default());
        let fields = fields.iter().copied();
        let built = head_from_fields(
            pseudo,
            fields,
            body.len() as u64,
            &Limits::default(),
            &mut buf,
            &mut head,
        );
        assert_eq!(built, Ok(()), "valid fields");
        let req = Request {
            buf: &buf,
            head: &head,
            body,
            peer: Some(std::net::IpAddr::from([127, 0, 0, 1])),
            secure: true,
        };
        let mut resp = Response::default();
        let streamed = self.block_on(self.proxy.handle(req, &mut resp));
        assert!(streamed.is_none(), "an in-memory Lambda does not stream");
        answer_of(&resp)
    }

    /// Runs `work` (requests through [`Pipeline::handle`]) on the pipeline's runtime.
    pub fn block_on<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.runtime.borrow_mut().block_on(work)
    }

    /// Serves the raw request `raw` (head and body, from 127.0.0.1) and returns the answer.
    pub fn send(&self, raw: &[u8]) -> Answer {
        let mut resp = Response::default();
        self.block_on(self.handle(raw, &mut RequestHead::default(), &mut resp));
        answer_of(&resp)
    }

    /// Serves a GET of `target` with `headers` (`Name: value` lines).
    pub fn get(&self, target: &str, headers: &[&str]) -> Answer {
        let mut raw = format!("GET {target} HTTP/1.1\r\nHost: gw.test\r\n");
        for h in headers {
            raw.push_str(h);
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        self.send(raw.as_bytes())
    }

    /// The metrics as `/metrics` shows them.
    pub fn metrics(&self) -> String {
        self.registry.prometheus(0, "test-node")
    }

    /// Invokes made.
    pub fn invoke_count(&self) -> usize {
        self.invokes.borrow().len()
    }
}

/// The answer as the client gets it.
fn answer_of(resp: &Response) -> Answer {
    let mut out = Vec::new();
    write_response(&mut out, resp, true, false);
    // A shared body (a cached answer) follows the head, as the connection writes it.
    if let Some(shared) = &resp.shared {
        out.extend_from_slice(shared);
    }
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |i| i + 4);
    Answer {
        status: resp.status,
        head: String::from_utf8_lossy(&out[..split]).into_owned(),
        body: out[split..].to_vec(),
    }
}
