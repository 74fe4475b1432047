//! What Keploy writes, read into recplay's model: its mock documents
//! (`version: api.keploy.io/v1beta1`) of every kind.

pub mod postgres_v3;
