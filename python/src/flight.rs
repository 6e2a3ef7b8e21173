//! Binding of the core's Arrow Flight front (`transport::flight_front`): the
//! executor service's supervisor starts one in front of its workers' socket.
//! The front runs on its own tokio threads; Python only starts and stops it.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use flightpickle_core::transport::flight_front::{Front, FrontConfig};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

/// A running Flight front; `shutdown(grace)` stops it.
#[pyclass(frozen, module = "flightpickle._native")]
pub(crate) struct FlightFront {
    inner: Mutex<Option<Front>>,
    #[pyo3(get)]
    port: u16,
}

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| PyValueError::new_err(format!("bad {what} {value}")))
}

/// The address to listen on: `host` itself when it is an IP address, else
/// the first address the system resolves the name to.
fn listen_address(host: &str, port: u16) -> PyResult<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let cannot = |why: String| PyValueError::new_err(format!("cannot listen on {host:?}: {why}"));
    (host, port)
        .to_socket_addrs()
        .map_err(|e| cannot(e.to_string()))?
        .next()
        .ok_or_else(|| cannot("the name resolves to no address".into()))
}

#[pymethods]
impl FlightFront {
    /// Listens on `host:port` (`host` an IP address or a name such as
    /// `localhost`; port 0 for any free port) and forwards each
    /// `DoExchange` to a worker on the Unix socket `worker_socket`.
    #[staticmethod]
    #[pyo3(signature = (host, port, worker_socket, *, body_limit, idle_timeout, token=None, tls_cert=None, tls_key=None))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        py: Python<'_>,
        host: &str,
        port: u16,
        worker_socket: PathBuf,
        body_limit: u64,
        idle_timeout: f64,
        token: Option<String>,
        tls_cert: Option<Vec<u8>>,
        tls_key: Option<Vec<u8>>,
    ) -> PyResult<Self> {
        let address = py.detach(|| listen_address(host, port))?;
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(PyValueError::new_err("TLS needs both a certificate and a key")),
        };
        let config = FrontConfig {
            worker_socket,
            body_limit,
            idle_timeout: seconds(idle_timeout, "idle timeout")?,
            token,
            tls,
        };
        let front = py
            .detach(|| Front::start(address, config))
            .map_err(PyOSError::new_err)?;
        let port = front.port();
        Ok(Self {
            inner: Mutex::new(Some(front)),
            port,
        })
    }

    /// Stops taking calls and waits up to `grace` seconds for those in
    /// flight; returns False when some were cut off.
    fn shutdown(&self, py: Python<'_>, grace: f64) -> PyResult<bool> {
        let grace = seconds(grace, "grace")?;
        let front = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        Ok(match front {
            Some(mut front) => py.detach(move || front.shutdown(grace)),
            None => true,
        })
    }
}
