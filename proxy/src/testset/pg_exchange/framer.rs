//! Grouping one connection's decoded traffic into exchanges.
//!
//! Client messages open an exchange and are appended to it until a Query or
//! Sync (or Flush) ends its request side ([`request_end`], which the mock
//! server groups live requests by too); server messages go to the oldest
//! exchange still waiting for answers, which completes at ReadyForQuery (or,
//! for a Flush, when every message of the batch has been answered). Several
//! exchanges can be in flight when a client pipelines.
//!
//! This module does no I/O: the connection feeds it messages and ships the
//! completed mocks, which keeps the grouping rules testable on their own.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::by_name::ByName;
use super::lifetime::is_session_sql;
use crate::pgwire::backend::BackendMessage;
use crate::pgwire::frontend::FrontendMessage;
use crate::pgwire::recorded::{BackendMsg, Format, FrontendMsg, Target};
use crate::testset::pg_mock::{Lifetime, MockSpec};
use crate::window::TestWindows;

/// Where a client message leaves the request side of the exchange it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEnd {
    /// More client messages may follow in the same exchange.
    Open,
    /// A Query, FunctionCall or the start-up: a request of its own,
    /// answered up to ReadyForQuery.
    Simple,
    /// Sync: the extended-protocol batch is complete, answered up to
    /// ReadyForQuery.
    Sync,
    /// Flush: the batch so far asks for its answers, which end when every
    /// message of it is answered; no ReadyForQuery comes.
    Flush,
}

/// How `msg` ends (or not) the request side of its exchange. COPY data
/// is [`RequestEnd::Open`]: it belongs to the exchange that started the
/// COPY, which each caller tracks from the answer it saw.
pub fn request_end(msg: &FrontendMsg) -> RequestEnd {
    match msg {
        FrontendMsg::Startup { .. }
        | FrontendMsg::Query { .. }
        | FrontendMsg::FunctionCall { .. } => RequestEnd::Simple,
        FrontendMsg::Sync => RequestEnd::Sync,
        FrontendMsg::Flush => RequestEnd::Flush,
        _ => RequestEnd::Open,
    }
}

/// How an exchange's request side ended, which decides when it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Still accepting client messages.
    Open,
    /// Ended by Query or Sync (or the start-up packet): completes at
    /// ReadyForQuery.
    Ready,
    /// Ended by Flush: completes once every message is answered.
    Flushed,
}

/// Where a COPY FROM STDIN stands in an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyIn {
    None,
    /// CopyInResponse seen: the client's CopyData/CopyDone/CopyFail belong
    /// to this exchange.
    Active,
    /// Extended-protocol COPY done: the server ignored the batch's Sync
    /// during copy mode and waits for another, which belongs here too.
    AwaitSync,
}

/// Client messages an exchange has room for from the start.
const REQUESTS_ROOM: usize = 6;
// Kept under glibc's large-request size (see `Exchange::new`).
const _: () = assert!(REQUESTS_ROOM * std::mem::size_of::<FrontendMsg>() < 1008);

#[derive(Debug)]
struct Exchange {
    position: u64,
    started: DateTime<Utc>,
    requests: Vec<FrontendMsg>,
    responses: Vec<BackendMsg>,
    end: End,
    copy_in: CopyIn,
    /// Contains extended-protocol messages (as opposed to a simple Query).
    extended: bool,
    /// Extended messages not yet answered (for Flush-ended batches).
    unanswered: u32,
    /// Result formats of each Execute whose result has not ended yet.
    execute_formats: VecDeque<Vec<Format>>,
    /// Column formats of the last RowDescription (simple Query results).
    row_formats: Vec<Format>,
    /// Every statement so far is session-level (see `lifetime`); an
    /// exchange that runs none is plumbing, and session-level too.
    session_only: bool,
}

impl Exchange {
    fn new(position: u64, started: DateTime<Utc>) -> Self {
        Exchange {
            position,
            started,
            // Room for a typical batch (Parse, Bind, Describe, Execute,
            // Sync) and its answers, so they are not grown one by one; but
            // under 1 KB, where glibc's malloc treats a request as large and
            // first consolidates its fast bins (a cost paid per exchange).
            requests: Vec::with_capacity(REQUESTS_ROOM),
            responses: Vec::with_capacity(8),
            end: End::Open,
            copy_in: CopyIn::None,
            extended: false,
            unanswered: 0,
            execute_formats: VecDeque::new(),
            row_formats: Vec::new(),
            session_only: true,
        }
    }

    fn data_row_formats(&self) -> &[Format] {
        match self.execute_formats.front() {
            Some(f) if self.extended => f,
            _ => &self.row_formats,
        }
    }

    fn answered(&mut self) {
        self.unanswered = self.unanswered.saturating_sub(1);
    }

    fn push(&mut self, request: FrontendMsg, session_level: bool) {
        self.session_only &= session_level;
        self.requests.push(request);
    }
}

/// A statement prepared on the connection.
#[derive(Debug)]
struct Prepared {
    query: String,
    /// [`is_session_sql`] of the query, worked out when it was parsed:
    /// drivers parse the same text again and again.
    session_level: bool,
}

/// One connection's traffic grouped into recorded exchanges, whoever
/// feeds it (the recorder live, the Keploy importer from its packets).
pub struct ConnFramer {
    connection: u64,
    windows: TestWindows,
    startup: Arc<BTreeMap<String, String>>,
    /// Prepared statement name → its query, for Binds in later exchanges.
    statements: ByName<Prepared>,
    /// Portal name → result formats its Bind asked for.
    portals: ByName<Vec<Format>>,
    in_flight: VecDeque<Exchange>,
    next_position: u64,
    /// False once the traffic could not be followed: bytes still flow, but
    /// nothing more is recorded for this connection.
    recording: bool,
}

impl ConnFramer {
    /// A fresh connection whose mocks carry `connection` as their id.
    pub fn new(connection: u64, windows: TestWindows) -> Self {
        ConnFramer {
            connection,
            windows,
            startup: Arc::default(),
            statements: ByName::default(),
            portals: ByName::default(),
            in_flight: VecDeque::new(),
            next_position: 0,
            recording: true,
        }
    }

    /// No exchange is waiting for its answer.
    pub fn idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Whether this connection is still being recorded.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Stops recording this connection (its traffic could not be decoded)
    /// and drops the exchanges in flight, which could not be completed
    /// faithfully.
    pub fn abandon(&mut self) {
        self.recording = false;
        self.in_flight.clear();
    }

    /// Feeds one client message, in wire order.
    pub fn on_frontend(&mut self, msg: FrontendMessage, now: DateTime<Utc>) {
        if !self.recording || msg.is_auth() || matches!(msg, FrontendMessage::Terminate) {
            return;
        }
        // The decoded text moves into the mock; what follows reads the model.
        let Some(mut model) = msg.into_model() else {
            return;
        };
        if let FrontendMsg::Startup { parameters, .. } = &model {
            self.startup = Arc::new(parameters.clone());
        }
        self.track_statements(&mut model);
        let session_level = self.is_session_level(&model);

        // COPY data and the closing Sync of a COPY belong to the exchange
        // that started the COPY, even though its request side has ended.
        if let Some(front) = self.in_flight.front_mut() {
            let absorbed = match (front.copy_in, &model) {
                (
                    CopyIn::Active,
                    FrontendMsg::CopyData { .. } | FrontendMsg::Sync | FrontendMsg::Flush,
                ) => true,
                (CopyIn::Active, FrontendMsg::CopyDone | FrontendMsg::CopyFail { .. }) => {
                    front.copy_in = if front.extended {
                        CopyIn::AwaitSync
                    } else {
                        CopyIn::None
                    };
                    true
                }
                (CopyIn::AwaitSync, FrontendMsg::Sync) => {
                    front.copy_in = CopyIn::None;
                    true
                }
                _ => false,
            };
            if absorbed {
                front.push(model, session_level);
                return;
            }
        }

        let needs_new = self.in_flight.back().map_or(true, |ex| ex.end != End::Open);
        if needs_new {
            let position = self.next_position;
            self.next_position += 1;
            self.in_flight.push_back(Exchange::new(position, now));
        }
        let execute_formats = match &model {
            FrontendMsg::Execute { portal, .. } => {
                Some(self.portals.get(portal).cloned().unwrap_or_default())
            }
            _ => None,
        };
        let Some(ex) = self.in_flight.back_mut() else {
            return;
        };
        match request_end(&model) {
            RequestEnd::Simple | RequestEnd::Sync => ex.end = End::Ready,
            RequestEnd::Flush if ex.unanswered == 0 && ex.requests.is_empty() => {
                // A lone Flush asks for nothing: no exchange to record, and
                // none to wait for.
                self.in_flight.pop_back();
                self.next_position -= 1;
                return;
            }
            RequestEnd::Flush => ex.end = End::Flushed,
            RequestEnd::Open => match &model {
                FrontendMsg::Parse { .. }
                | FrontendMsg::Bind { .. }
                | FrontendMsg::Describe { .. }
                | FrontendMsg::Close { .. } => {
                    ex.extended = true;
                    ex.unanswered += 1;
                }
                FrontendMsg::Execute { .. } => {
                    ex.extended = true;
                    ex.unanswered += 1;
                    ex.execute_formats
                        .push_back(execute_formats.unwrap_or_default());
                }
                _ => {}
            },
        }
        ex.push(model, session_level);
    }

    /// Feeds one server message, in wire order; returns the mock it
    /// completed, if any.
    pub fn on_backend(&mut self, msg: BackendMessage, now: DateTime<Utc>) -> Option<MockSpec> {
        if !self.recording {
            return None;
        }
        // Asynchronous messages between exchanges (a notification, a
        // parameter change) answer nothing recorded.
        let ex = self.in_flight.front_mut()?;
        let model = msg.into_model(ex.data_row_formats())?;
        match &model {
            BackendMsg::ParseComplete
            | BackendMsg::BindComplete
            | BackendMsg::CloseComplete
            | BackendMsg::NoData => ex.answered(),
            BackendMsg::RowDescription { fields } => {
                if ex.extended {
                    // Its formats are Bind's to choose (a Describe of a
                    // statement even reports them all as text).
                    ex.answered();
                } else {
                    ex.row_formats = fields.iter().map(|f| f.format).collect();
                }
            }
            BackendMsg::CommandComplete { .. }
            | BackendMsg::EmptyQueryResponse
            | BackendMsg::PortalSuspended
                if ex.extended =>
            {
                ex.answered();
                ex.execute_formats.pop_front();
            }
            BackendMsg::ErrorResponse { .. } => {
                // The server skips the rest of the batch up to Sync; a
                // failed COPY leaves copy mode.
                ex.unanswered = 0;
                ex.execute_formats.clear();
                if ex.copy_in == CopyIn::Active {
                    ex.copy_in = if ex.extended {
                        CopyIn::AwaitSync
                    } else {
                        CopyIn::None
                    };
                }
            }
            BackendMsg::CopyInResponse { .. } => ex.copy_in = CopyIn::Active,
            _ => {}
        }
        let complete = matches!(model, BackendMsg::ReadyForQuery { .. })
            || (ex.end == End::Flushed && ex.unanswered == 0);
        ex.responses.push(model);
        if !complete {
            return None;
        }
        let ex = self.in_flight.pop_front()?;
        Some(self.finish(ex, now))
    }

    fn track_statements(&mut self, model: &mut FrontendMsg) {
        match model {
            FrontendMsg::Parse { name, query, .. } => {
                // Drivers re-parse the same unnamed statement over and over.
                match self.statements.get_mut(name.as_str()) {
                    Some(known) if known.query == *query => {}
                    Some(known) => {
                        known.query.clone_from(query);
                        known.session_level = is_session_sql(query);
                    }
                    None => {
                        let prepared = Prepared {
                            query: query.clone(),
                            session_level: is_session_sql(query),
                        };
                        self.statements.insert(name, prepared);
                    }
                }
            }
            FrontendMsg::Bind {
                portal,
                statement,
                statement_query,
                result_formats,
                ..
            } => {
                *statement_query = self
                    .statements
                    .get(statement.as_str())
                    .map(|p| p.query.clone());
                match self.portals.get_mut(portal.as_str()) {
                    Some(formats) => formats.clone_from(result_formats),
                    None => {
                        self.portals.insert(portal, result_formats.clone());
                    }
                }
            }
            FrontendMsg::Close { target, name } => match target {
                Target::Statement => {
                    self.statements.remove(name.as_str());
                }
                Target::Portal => {
                    self.portals.remove(name.as_str());
                }
            },
            _ => {}
        }
    }

    /// Whether `request` (already tracked) runs only session-level
    /// statements: a Parse or Bind by its statement's verdict, COPY data
    /// and function calls never, plumbing (Describe, Sync, ...) always.
    fn is_session_level(&self, request: &FrontendMsg) -> bool {
        match request {
            FrontendMsg::Query { query } => is_session_sql(query),
            FrontendMsg::Parse {
                name: statement, ..
            }
            | FrontendMsg::Bind { statement, .. } => self
                .statements
                .get(statement.as_str())
                .is_some_and(|p| p.session_level),
            FrontendMsg::CopyData { .. } | FrontendMsg::FunctionCall { .. } => false,
            _ => true,
        }
    }

    fn finish(&self, ex: Exchange, now: DateTime<Utc>) -> MockSpec {
        let lifetime = if ex.position == 0 || ex.session_only {
            Lifetime::Session
        } else {
            match self.windows.test_at(ex.started) {
                Some(test) => Lifetime::Test(test),
                None => Lifetime::Unattributed,
            }
        };
        MockSpec {
            connection: self.connection,
            position: ex.position,
            lifetime,
            startup: Arc::clone(&self.startup),
            request_timestamp: ex.started,
            response_timestamp: now,
            requests: ex.requests,
            responses: ex.responses,
        }
    }
}

#[cfg(test)]
mod tests;
