import Foundation
import NIOCore
import NIOEmbedded
import TernClient
import TernLog
import TernProtocol
import TernReplication
import TernServer

/// libFuzzer targets over everything in Tern that parses bytes a peer or a disk controls. Built
/// with `-sanitize=fuzzer,address` (`make fuzz`); libFuzzer supplies `main`. `TERN_FUZZ_TARGET`
/// picks one:
/// - `request`: a connection's byte stream through the broker's `RequestFramer`, then each frame's
///   header and the generated decoder of its API and version (every request type, every version);
/// - `batch`: `ClientBatchValidator` on a produced batch; whatever it accepts must decode whole;
/// - `segment`: the bytes as a log segment on disk (for odd last bytes also as a sealed segment's
///   index files), opened (recovery), read back and appended to.
/// - `response`: a response as Tern's client and a follower receive it from a peer (the input
///   starts with its request's API key and version as two int16s): the header, the generated
///   decoder of that API and version; a Fetch response's records also go through the follower's
///   whole-batch splitter and the client's batch decoding.
/// - `broker`: sequences of generated and captured requests handled by a live in-process broker
///   with topics, groups and a transaction in place (`BrokerTarget`): what handlers *do* with
///   decoded values, against state.
/// A finding is a crash, a sanitizer report or a broken property (`fatalError`).
///
/// `tern-fuzz live` (plain build) fuzzes running broker processes over TCP instead (`LiveFuzz`).
enum Target: String {
    case request, batch, segment, response, broker
}

nonisolated(unsafe) var target = Target(rawValue: ProcessInfo.processInfo.environment["TERN_FUZZ_TARGET"] ?? "request") ?? .request

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    run(ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size)))
    return 0
}

func run(_ bytes: ByteBuffer) {
    switch target {
    case .request: fuzzRequests(bytes)
    case .batch: fuzzBatch(bytes)
    case .segment: fuzzSegment(bytes)
    case .response: fuzzResponse(bytes)
    case .broker: fuzzBroker(bytes)
    }
}

#if TERN_FUZZING
    /// libFuzzer's driver, from the runtime `-sanitize=fuzzer` links.
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt
#endif

/// Fuzzing build: hands control to libFuzzer (its usual flags: corpus directories,
/// `-max_total_time=60`, …). Plain build: `tern-fuzz TARGET FILE|DIR...` runs the inputs once each
/// (corpus replay, a regression check that needs no sanitizer build).
@main
struct Entry {
    static func main() {
        var args = CommandLine.arguments.dropFirst()
        #if TERN_FUZZING
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
        #else
            if args.first == "live" {
                guard let options = LiveFuzz.parse(Array(args.dropFirst())) else {
                    FileHandle.standardError.write(Data((LiveFuzz.usage + "\n").utf8))
                    exit(2)
                }
                var live = LiveFuzz(options: options)
                exit(live.run())
            }
            guard let name = args.popFirst(), let chosen = Target(rawValue: name) else {
                FileHandle.standardError.write(Data("usage: tern-fuzz request|batch|segment|response|broker FILE|DIR...\n       tern-fuzz live ...\n".utf8))
                exit(2)
            }
            target = chosen
            var count = 0
            for path in args {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
                let files = isDirectory.boolValue
                    ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" } : [path]
                for file in files {
                    guard let data = FileManager.default.contents(atPath: file) else { continue }
                    run(ByteBuffer(bytes: data))
                    count += 1
                }
            }
            print("replayed \(count) \(name) inputs")
        #endif
    }
}

func fuzzRequests(_ stream: ByteBuffer) {
    let channel = EmbeddedChannel()
    let pool = RequestMemoryPool(limit: 1 << 20)
    // The framer's close request is only noted: the channel is finished below either way (an
    // EmbeddedChannel closed from inside a handler and then finished leaks its pipeline).
    try! channel.pipeline.syncOperations.addHandler(
        RequestFramer(maxFrameSize: 1 << 20, pool: pool, load: ConnectionLoad(), frameTimeout: .seconds(30)) { _, _ in })
    _ = try? channel.writeInbound(stream)
    while let frame = try? channel.readInbound(as: RequestFrame.self) {
        decodeRequest(frame.bytes)
        pool.release(frame.reservedBytes)
    }
    _ = try? channel.finish()
    if pool.reservedBytes != 0 { fatalError("the framer kept \(pool.reservedBytes) bytes of request memory after close") }
}

/// What `RequestDispatcher` does before a handler runs: the header, then the body's decoder.
func decodeRequest(_ frame: ByteBuffer) {
    var body = frame
    guard let key = body.readInteger(as: Int16.self), let version = body.readInteger(as: Int16.self),
        body.readInteger(as: Int32.self) != nil, let api = ApiKey(rawValue: key), api.schemaVersions.contains(version),
        (try? body.readKafkaNullableString(compact: false)) != nil
    else { return }
    if version >= api.firstFlexibleVersion {
        guard let count = try? body.readUnsignedVarint() else { return }
        for _ in 0..<min(count, 64) {
            guard (try? body.readUnsignedVarint()) != nil, let n = try? body.readUnsignedVarint(), (try? body.skipKafkaBytes(Int(n))) != nil else { return }
        }
    }
    let request = try? api.requestType.init(from: &body, version: version)
    // Bytes a client embeds that the group coordinator decodes itself (subscriptions and
    // assignments of the "consumer" protocol, read in KIP-848 migration and offset handling).
    if let join = request as? JoinGroupRequest { join.protocols.forEach { decodeConsumerProtocol($0.metadata) } }
    if let sync = request as? SyncGroupRequest { sync.assignments.forEach { decodeConsumerProtocol($0.assignment) } }
}

func decodeConsumerProtocol(_ bytes: ByteBuffer) {
    var reader = bytes
    guard let version = reader.readInteger(as: Int16.self), version >= 0 else { return }
    var subscription = reader, assignment = reader
    _ = try? ConsumerProtocolSubscription(from: &subscription, version: min(version, 3))
    _ = try? ConsumerProtocolAssignment(from: &assignment, version: min(version, 3))
}

let batchPolicy = BatchPolicy(maxMessageBytes: 1 << 20, compacted: false, timestampBeforeMaxMs: 3_600_000, timestampAfterMaxMs: 3_600_000,
                              decompressedLimit: 8 << 20)

func fuzzBatch(_ input: ByteBuffer) {
    checkBatch(input)
    // Most mutations break the length or CRC and stop at the first check; the same bytes with both
    // repaired reach every deeper rule.
    guard input.readableBytes >= RecordBatchHeader.size else { return }
    var repaired = input
    repaired.setInteger(Int32(repaired.readableBytes - RecordBatchHeader.logOverhead), at: 8)
    RecordBatch.updateCRC(in: &repaired, batchAt: 0)
    checkBatch(repaired)
}

func checkBatch(_ input: ByteBuffer) {
    var records = input
    guard let header = try? ClientBatchValidator.validate(&records, policy: batchPolicy, nowMs: 1_700_000_000_000) else { return }
    var copy = records
    guard let batch = try? RecordBatch.read(from: &copy), batch.records.count == Int(header.recordsCount) else {
        fatalError("the validator accepted a batch that does not decode whole")
    }
    for (i, r) in batch.records.enumerated() where r.offset != Int64(i) { fatalError("accepted record \(i) has offset \(r.offset)") }
}

let segmentDirectory: String = {
    let dir = NSTemporaryDirectory() + "tern-fuzz-segment-\(getpid())/p-0"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()
let io = DiskIO(logger: .init(label: "fuzz"))
let appendable: ByteBuffer = {
    var out = ByteBuffer()
    try! RecordBatch(records: [Record(timestamp: 1, key: ByteBuffer(string: "k"), value: ByteBuffer(string: "v"))]).encode(to: &out)
    return out
}()

func fuzzSegment(_ bytes: ByteBuffer) {
    for f in (try? FileManager.default.contentsOfDirectory(atPath: segmentDirectory)) ?? [] {
        try? FileManager.default.removeItem(atPath: "\(segmentDirectory)/\(f)")
    }
    let data = Data(bytes.readableBytesView)
    _ = FileManager.default.createFile(atPath: "\(segmentDirectory)/00000000000000000000.log", contents: data)
    if data.last.map({ $0 & 1 == 1 }) ?? false {
        // The same bytes as a sealed segment below the recovery point, with themselves as its
        // index files: the path that trusts well-formed indexes and must still catch wrong ones.
        _ = FileManager.default.createFile(atPath: "\(segmentDirectory)/00000000000000000000.index", contents: data)
        _ = FileManager.default.createFile(atPath: "\(segmentDirectory)/00000000000000000000.timeindex", contents: data)
        _ = FileManager.default.createFile(atPath: "\(segmentDirectory)/00000000000001048576.log", contents: Data())
        _ = FileManager.default.createFile(atPath: "\(segmentDirectory)/recovery-point", contents: Data("1048576\n".utf8))
    }
    guard let log = try? PartitionLog(directory: segmentDirectory, config: LogConfig(), io: io, logger: .init(label: "fuzz")) else { return }
    defer { log.close() }
    var next = log.logStartOffset
    while next < log.logEndOffset, var read = try? log.read(from: next, maxBytes: 1 << 20).records.bytes {
        guard let batch = try? RecordBatch.read(from: &read) else { break }
        next = max(next + 1, batch.baseOffset + Int64(batch.preservedLastOffsetDelta ?? 0) + 1)
    }
    let end = log.logEndOffset
    guard let appended = try? log.append(appendable, headers: [try! RecordBatchHeader.validated(in: appendable, at: 0)]) else { return }
    if appended.baseOffset != end { fatalError("append after recovery went to \(appended.baseOffset), log end was \(end)") }
}

func fuzzResponse(_ input: ByteBuffer) {
    var body = input
    guard let key = body.readInteger(as: Int16.self), let version = body.readInteger(as: Int16.self), let api = ApiKey(rawValue: key),
        api.schemaVersions.contains(version), body.readInteger(as: Int32.self) != nil
    else { return }
    // Response header v1 (tagged fields) for flexible versions, except ApiVersions (always v0).
    if version >= api.firstFlexibleVersion && api != .apiVersions {
        guard let count = try? body.readUnsignedVarint() else { return }
        for _ in 0..<min(count, 64) {
            guard (try? body.readUnsignedVarint()) != nil, let n = try? body.readUnsignedVarint(), (try? body.skipKafkaBytes(Int(n))) != nil else { return }
        }
    }
    guard let fetch = (try? api.responseType.init(from: &body, version: version)) as? FetchResponse else { return }
    for topic in fetch.responses {
        for partition in topic.partitions {
            guard case .bytes(let records)? = partition.records else { continue }
            var consumed: [ConsumedRecord] = []
            try? Consumer.decode(records, topic: "t", partition: partition.partitionIndex, from: 0, into: &consumed)
            guard let (whole, headers) = try? ReplicaFetcher.wholeBatches(records) else { continue }
            // What the follower would append: exactly the batches it counted, each decodable by
            // its header alone.
            if whole.readableBytes != headers.reduce(0, { $0 + $1.totalSize }) {
                fatalError("the follower would append \(whole.readableBytes) bytes for batches of \(headers.map(\.totalSize))")
            }
            var at = whole.readerIndex
            for h in headers {
                guard (try? RecordBatchHeader.validated(in: whole, at: at)) == h else { fatalError("a counted batch does not validate where it lies") }
                at += h.totalSize
            }
        }
    }
}
