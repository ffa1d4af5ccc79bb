//! Types and gRPC stubs generated from `proto/spamflow/v1` at build time.
//!
//! Domain code does not use these types directly: each service converts them into
//! `spamflow-core` types at its edge.

#![forbid(unsafe_code)]

/// The `spamflow.v1` protobuf package.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("spamflow.v1");
}

/// The encoded `FileDescriptorSet` of every spamflow proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/spamflow_descriptor.bin"));
