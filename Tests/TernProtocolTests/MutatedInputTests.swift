import NIOCore
import XCTest

@testable import TernProtocol

/// Mutation testing of every decoder a peer can reach: valid encodings of every generated message
/// at every version, and valid record batches, are corrupted (bytes flipped, cut short, junk
/// inserted) many times with a seeded generator. Decoding must either throw or return — never
/// crash, hang or read out of bounds (the buffer API bounds-checks every read).
final class MutatedInputTests: XCTestCase {
    /// SplitMix64: deterministic, so a failure reproduces.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutate(_ bytes: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var out = bytes
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0 where !out.isEmpty:
                out[Int.random(in: 0..<out.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            case 1 where !out.isEmpty:
                out.removeLast(Int.random(in: 0...out.count, using: &rng))
            case 2:
                let junk = (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                out.insert(contentsOf: junk, at: Int.random(in: 0...out.count, using: &rng))
            default:
                // Lengths and counts are where decoders go wrong: make one huge or negative.
                if out.count >= 4 {
                    let at = Int.random(in: 0...(out.count - 4), using: &rng)
                    out.replaceSubrange(at..<(at + 4), with: [0x7F, 0xFF, 0xFF, UInt8.random(in: 0...255, using: &rng)])
                }
            }
        }
        return out
    }

    func testMutatedMessagesNeverCrashTheDecoders() {
        var rng = SeededGenerator(state: 0x7E44)
        var decoded = 0, rejected = 0
        for type in allSampledMessages {
            for version in type.validVersions {
                let bytes = encodedSample(type, version)
                for _ in 0..<20 {
                    if decode(type, Self.mutate(bytes, &rng), version) { decoded += 1 } else { rejected += 1 }
                }
            }
        }
        XCTAssertGreaterThan(decoded + rejected, 10_000)
        XCTAssertGreaterThan(rejected, 1000, "most corruptions should be detected")
    }

    func testMutatedRecordBatchesNeverCrash() throws {
        var rng = SeededGenerator(state: 0xBA7C4)
        var batch = RecordBatch(records: (0..<5).map {
            Record(timestamp: 1_700_000_000_000 + Int64($0), key: ByteBuffer(string: "k\($0)"), value: ByteBuffer(string: "value \($0)"),
                   headers: [RecordHeader(key: "h", value: ByteBuffer(string: "\($0)"))])
        }, compression: .lz4)
        var lz4 = ByteBuffer()
        try batch.encode(to: &lz4)
        batch = RecordBatch(records: batch.records)
        var plain = ByteBuffer()
        try batch.encode(to: &plain)
        var caught = 0
        for source in [plain, lz4] {
            let bytes = Array(source.readableBytesView)
            for _ in 0..<3000 {
                let mutated = ByteBuffer(bytes: Self.mutate(bytes, &rng))
                if (try? RecordBatchHeader.validateAll(mutated)) == nil { caught += 1 }
                var copy = mutated
                _ = try? RecordBatch.read(from: &copy)
            }
        }
        // CRC-32C catches nearly every corruption that keeps the length plausible.
        XCTAssertGreaterThan(caught, 5700)
    }

    private func encodedSample<M: SampledMessage>(_: M.Type, _ version: Int16) -> [UInt8] {
        var b = ByteBuffer()
        M.sample(version: version).encode(to: &b, version: version)
        return Array(b.readableBytesView)
    }

    private func decode<M: SampledMessage>(_: M.Type, _ bytes: [UInt8], _ version: Int16) -> Bool {
        var b = ByteBuffer(bytes: bytes)
        return (try? M(from: &b, version: version)) != nil
    }
}
