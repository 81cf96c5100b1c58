//! api-common
