import TernProtocol

extension Broker {
    func apiVersions(_ request: ApiVersionsRequest, version: Int16) -> ApiVersionsResponse {
        ApiVersionsResponse(errorCode: 0, apiKeys: ApiRegistry.apiVersionsList, throttleTimeMs: 0)
    }

    /// The reply to an ApiVersions version we do not know: always encoded as v0 with
    /// UNSUPPORTED_VERSION and our ranges, so the client can retry with a version we support.
    static func unsupportedApiVersionsResponse() -> ApiVersionsResponse {
        ApiVersionsResponse(errorCode: KafkaError.unsupportedVersion.rawValue, apiKeys: ApiRegistry.apiVersionsList)
    }
}
