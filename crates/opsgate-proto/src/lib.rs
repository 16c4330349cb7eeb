//! Generated protobuf and gRPC code for the public `opsgate.v1` contract, its file descriptor set
//! for reflection, the codec every service uses, and the metadata keys of the wire contract.

pub mod codec;
pub mod metadata;

/// The `opsgate.v1` package.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod v1 {
    tonic::include_proto!("opsgate.v1");
}

/// Encoded `FileDescriptorSet` of every opsgate proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/opsgate_descriptor.bin"));
