//! The lifeos.v1 gRPC contract: messages, server traits and clients generated from `proto/`.
//!
//! ```
//! let ack = proto::v1::CommandAck::default();
//! assert!(ack.consistency_token.is_empty());
//! assert!(!proto::FILE_DESCRIPTOR_SET.is_empty());
//! ```

/// Generated code, by protobuf package.
pub mod lifeos {
    /// Package `lifeos.v1`.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("lifeos.v1");
    }
}

pub use lifeos::v1;

/// The encoded `FileDescriptorSet` of every lifeos.v1 file (and its imports), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lifeos_descriptor.bin"));
