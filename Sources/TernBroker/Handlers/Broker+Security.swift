import TernProtocol

/// What Kafka answers on a PLAINTEXT listener without an authorizer: SASL requests are in the wrong
/// state (no SASL on this listener) and ACL requests find security disabled. Answering — instead of
/// closing the connection — lets admin tools report the real reason.
extension Broker {
    func saslHandshake(_ request: SaslHandshakeRequest) -> SaslHandshakeResponse {
        SaslHandshakeResponse(errorCode: KafkaError.illegalSaslState.rawValue, mechanisms: [])
    }

    func saslAuthenticate(_ request: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
        SaslAuthenticateResponse(
            errorCode: KafkaError.illegalSaslState.rawValue, errorMessage: "SASL is not enabled on this listener", authBytes: .init())
    }

    private static let noAuthorizer = "No Authorizer is configured on the broker"

    func describeAcls(_ request: DescribeAclsRequest) -> DescribeAclsResponse {
        DescribeAclsResponse(errorCode: KafkaError.securityDisabled.rawValue, errorMessage: Self.noAuthorizer)
    }

    func createAcls(_ request: CreateAclsRequest) -> CreateAclsResponse {
        CreateAclsResponse(results: request.creations.map { _ in
            .init(errorCode: KafkaError.securityDisabled.rawValue, errorMessage: Self.noAuthorizer)
        })
    }

    func deleteAcls(_ request: DeleteAclsRequest) -> DeleteAclsResponse {
        DeleteAclsResponse(filterResults: request.filters.map { _ in
            .init(errorCode: KafkaError.securityDisabled.rawValue, errorMessage: Self.noAuthorizer)
        })
    }
}
