//! What Keploy writes, read into recplay's model: its mock documents
//! (`version: api.keploy.io/v1beta1`) of every kind.
//!
//! - [`postgres_v3`]: PostgresV2/PostgresV3 documents, by sub-type;
//! - `query`: a PostgresV3 query block, read and checked;
//! - `exchanges`: that invocation as the exchanges that ask it;
//! - `cell`: Keploy's logical cell values back to wire bytes;
//! - `fields`: reading YAML fields with errors that name them;
//! - `sql_text`: placeholders and transaction status of a statement.

mod cell;
mod exchanges;
mod fields;
pub mod postgres_v3;
mod query;
mod sql_text;
#[cfg(test)]
mod tests;
