//! The protobuf codec of every opsgate service: prost's, except that a message that cannot be
//! decoded is the caller's error (`InvalidArgument`), not the server's (`Internal`).
//!
//! tonic maps a decode failure (a non-UTF-8 `string`, a truncated or garbled message) to
//! `Internal`, as gRPC's status code table does; but for a server that is a bad request, and
//! `Internal` tells the caller to look for a bug on the server. See ARCHITECTURE.md.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Most characters of a decoder's own message repeated to the caller.
const MAX_DETAIL: usize = 200;

/// prost encoding; decoding failures are `InvalidArgument`.
#[derive(Debug, Clone)]
pub struct OpsgateCodec<T, U> {
    inner: ProstCodec<T, U>,
}

impl<T, U> Default for OpsgateCodec<T, U> {
    fn default() -> Self {
        Self {
            inner: ProstCodec::default(),
        }
    }
}

impl<T, U> Codec for OpsgateCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.inner.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder {
            inner: self.inner.decoder(),
            _message: PhantomData,
        }
    }
}

/// prost's decoder with its failures turned into `InvalidArgument`.
#[derive(Debug)]
pub struct RequestDecoder<U> {
    inner: ProstDecoder<U>,
    _message: PhantomData<U>,
}

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.inner.decode(buf).map_err(undecodable)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

fn undecodable(status: Status) -> Status {
    if status.code() != Code::Internal {
        return status;
    }
    let detail: String = status.message().chars().take(MAX_DETAIL).collect();
    Status::invalid_argument(format!(
        "the request is not a valid opsgate.v1 message ({detail}); every string field must be \
         UTF-8 text: send a file's bytes as text, or fix the client"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_failures_become_invalid_argument() {
        let status = undecodable(Status::internal(
            "failed to decode Protobuf message: invalid string value: data is not UTF-8 encoded",
        ));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("not UTF-8"),
            "{}",
            status.message()
        );
        assert_eq!(undecodable(Status::cancelled("x")).code(), Code::Cancelled);
    }
}
