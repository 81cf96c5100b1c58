//! query-api
