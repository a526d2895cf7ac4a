//! Listing streams and asking who the client's key is: `GET /streams` and
//! `GET /auth/whoami`.

use strata_wire::{StreamList, StreamsQuery, WhoAmI};

use crate::client::{set_query, Client};
use crate::error::ClientError;

impl Client {
    /// One page of the streams the client's key may read, in byte order of
    /// their names, with their state and last write time (`GET /streams`).
    /// The next page is `after = page.next`; `next` is `None` at the end.
    /// A key that sees only some streams may get a short page, even an
    /// empty one, that is not the end: follow `next`.
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// let mut query = strata_wire::StreamsQuery {
    ///     category: Some("orders".into()),
    ///     ..Default::default()
    /// };
    /// loop {
    ///     let page = client.list_streams(&query).await?;
    ///     for s in &page.streams {
    ///         println!("{} at version {} ({:?})", s.stream, s.version, s.state);
    ///     }
    ///     match page.next {
    ///         Some(next) => query.after = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_streams(&self, query: &StreamsQuery) -> Result<StreamList, ClientError> {
        let mut url = self.url(&["streams"]);
        set_query(&mut url, query)?;
        let rb = self.request(reqwest::Method::GET, url.clone());
        self.call(rb, &url).await
    }

    /// The key the client presents: its name, role and prefixes, or the
    /// open server's answer when it runs without keys
    /// (`GET /auth/whoami`).
    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        let url = self.url(&["auth", "whoami"]);
        let rb = self.request(reqwest::Method::GET, url.clone());
        self.call(rb, &url).await
    }
}
