import Foundation
import TernProtocolGenerator

// Usage: tern-protocol-gen <schema dir> <sources out dir> <tests out dir>
let args = CommandLine.arguments
guard args.count == 4 else {
    FileHandle.standardError.write(Data("usage: tern-protocol-gen <schema-dir> <sources-out> <tests-out>\n".utf8))
    exit(2)
}
do {
    let output = try ProtocolGenerator().generate(schemaDirectory: URL(fileURLWithPath: args[1]))
    for (dir, files) in [(args[2], output.sources), (args[3], output.testSources)] {
        let fm = FileManager.default
        try? fm.removeItem(atPath: dir)
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
        }
    }
    print("generated \(output.sources.count) source files and \(output.testSources.count) test files")
} catch {
    FileHandle.standardError.write(Data("tern-protocol-gen: \(error)\n".utf8))
    exit(1)
}
