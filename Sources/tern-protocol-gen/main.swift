import Foundation
import TernProtocolGenerator

// Usage: tern-protocol-gen <schema dir> <sources out dir> <tests out dir> <fuzz harness out dir>
let args = CommandLine.arguments
guard args.count == 5 else {
    FileHandle.standardError.write(Data("usage: tern-protocol-gen <schema-dir> <sources-out> <tests-out> <fuzz-out>\n".utf8))
    exit(2)
}
do {
    let output = try ProtocolGenerator().generate(schemaDirectory: URL(fileURLWithPath: args[1]))
    for (dir, files) in [(args[2], output.sources), (args[3], output.testSources), (args[4], output.fuzzSources)] {
        let fm = FileManager.default
        try? fm.removeItem(atPath: dir)
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
        }
    }
    print("generated \(output.sources.count) source files, \(output.testSources.count) test files and \(output.fuzzSources.count) fuzz files")
} catch {
    FileHandle.standardError.write(Data("tern-protocol-gen: \(error)\n".utf8))
    exit(1)
}
