//! The upstream the proxy forwards to, and the connections that reach it
//! over plain TCP or rustls.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::error::HttpProxyError;

/// Where recorded traffic goes: scheme, authority and an optional path
/// prefix, parsed once from `--http-upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    https: bool,
    host: String,
    port: u16,
    /// Path prefix without a trailing slash ("" for none).
    prefix: String,
    /// `scheme://HOST:PORT` plus the prefix, made once: every recorded
    /// exchange's URL starts with it.
    base_url: String,
}

impl Upstream {
    /// Parses `http://HOST[:PORT][/prefix]` or `https://…`.
    pub fn parse(url: &str) -> Result<Self, HttpProxyError> {
        let invalid = |reason: &str| HttpProxyError::InvalidUpstream {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(invalid(&format!("scheme {other:?} is not supported"))),
            None => return Err(invalid("the scheme is missing")),
        };
        let host = uri.host().ok_or_else(|| invalid("the host is missing"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if uri.query().is_some() {
            return Err(invalid("a query string cannot be part of the upstream"));
        }
        let prefix = uri.path().trim_end_matches('/').to_string();
        let mut upstream = Upstream {
            https,
            host,
            port,
            prefix,
            base_url: String::new(),
        };
        let scheme = if https { "https" } else { "http" };
        upstream.base_url = format!("{scheme}://{}{}", upstream.authority(), upstream.prefix);
        Ok(upstream)
    }

    /// True for an https:// upstream.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `HOST:PORT`, as sent in the `Host` header and used to connect.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `scheme://HOST:PORT` plus the prefix: what error messages name.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The absolute URL of a request the client sent as `path_and_query`.
    pub fn url_for(&self, path_and_query: &str) -> String {
        let mut url = String::with_capacity(self.base_url.len() + path_and_query.len());
        url.push_str(&self.base_url);
        url.push_str(path_and_query);
        url
    }

    /// The request target the upstream receives for `path_and_query`: the
    /// prefix and the path, as a request line carries them.
    pub fn origin_form(&self, path_and_query: &str) -> String {
        format!("{}{}", self.prefix, path_and_query)
    }
}

/// Builds the connector that reaches `upstream`, over rustls for https://.
pub(crate) fn connector(
    upstream: &Upstream,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<UpstreamConnector, HttpProxyError> {
    let tls = if upstream.https {
        let config = match tls {
            Some(c) => c,
            None => crate::tls::client_config(None, crate::tls::HTTP_1_1)?,
        };
        let name = ServerName::try_from(upstream.host.clone()).map_err(|e| {
            HttpProxyError::InvalidUpstream {
                url: upstream.base_url(),
                reason: format!("{} is not a valid TLS server name: {e}", upstream.host),
            }
        })?;
        Some((TlsConnector::from(config), name))
    } else {
        None
    };
    Ok(UpstreamConnector {
        authority: Arc::from(upstream.authority()),
        tls,
    })
}

/// Connects every request to the one upstream, whatever the request URI
/// says, so a misrouted absolute URI can never reach another host.
#[derive(Clone)]
pub(crate) struct UpstreamConnector {
    authority: Arc<str>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl UpstreamConnector {
    /// A new connection to the upstream, TLS negotiated for https://.
    pub(crate) async fn connect(&self) -> std::io::Result<UpstreamStream> {
        let tcp = TcpStream::connect(&*self.authority).await?;
        tcp.set_nodelay(true)?;
        Ok(match &self.tls {
            None => UpstreamStream::Plain(tcp),
            Some((connector, name)) => {
                UpstreamStream::Tls(Box::new(connector.connect(name.clone(), tcp).await?))
            }
        })
    }
}

/// One connection to the upstream.
pub(crate) enum UpstreamStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_url_keeps_scheme_authority_and_prefix() {
        let up = Upstream::parse("https://example.org/api/").expect("parses");
        assert!(up.is_https());
        assert_eq!(up.authority(), "example.org:443");
        assert_eq!(up.url_for("/v1?a=1"), "https://example.org:443/api/v1?a=1");
        assert_eq!(up.origin_form("/v1?a=1"), "/api/v1?a=1");
        let plain = Upstream::parse("http://127.0.0.1:8000").expect("parses");
        assert_eq!(plain.url_for("/x"), "http://127.0.0.1:8000/x");
    }

    #[test]
    fn a_bad_upstream_url_says_what_to_give() {
        for bad in ["127.0.0.1:8000", "ftp://x", "http://", "http://x/?q=1"] {
            let err = Upstream::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("http://HOST:PORT"), "{err}");
        }
    }
}
