import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with `100 Continue` as soon as the request head arrives.
///
/// S3 clients (botocore, so awscli and boto3) send it on every upload and wait up to a second for
/// the answer before they send the body; neither NIO nor Hummingbird answers it, so without this
/// every PutObject took a second longer. Answering at once (rather than when the handler starts
/// reading the body) keeps the connection's framing simple: the client always sends its body,
/// and the connection stays usable after a refusal. A refused upload costs its bytes on the wire.
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let request) = unwrapInboundIn(data),
           request.headerFields[values: .expect].contains(where: { $0.lowercased() == "100-continue" }) {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}
