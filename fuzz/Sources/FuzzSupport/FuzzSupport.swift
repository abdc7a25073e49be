import EasyQuant
import Foundation

/// What every fuzz target shares: the input as bytes, and the checks every error must pass.
public enum Fuzz {
    /// The most bytes a target lets one tensor decode to. Large enough for every seed, small
    /// enough that libFuzzer's memory limit is never the thing that stops a run; the readers
    /// refuse anything above it with their ordinary "too large to decode" error.
    public static let maxDecodedBytes = 64 << 20

    /// The fuzzer's input as an array.
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// Runs `body`; an error is a correct outcome for hostile input, as long as its message is
    /// what the tools print: one non-empty line that starts with `name` when a file is named.
    public static func expectingErrors(named name: String? = nil, _ body: () throws -> Void) {
        do { try body() } catch { check(error, named: name) }
    }

    /// Traps (which libFuzzer reports as a crash) if `error` is not a one-line message.
    public static func check(_ error: Error, named name: String?) {
        let text = "\(error)"
        require(!text.isEmpty, "empty error message from \(type(of: error))")
        require(!text.contains("\n") && !text.contains("\r"), "error message of several lines: \(text)")
        if let name { require(text.hasPrefix(name), "error message does not name \(name): \(text)") }
    }

    /// Traps with `message` (printed, unlike a precondition's in an optimized build) unless
    /// `condition` holds: a broken promise of the code under test.
    public static func require(_ condition: Bool, _ message: @autoclosure () -> String = "a promise of the code under test does not hold",
                               file: StaticString = #fileID, line: UInt = #line) {
        if !condition { fatalError(message(), file: file, line: line) }
    }

    /// The repository this fuzz package belongs to (two folders above this source file's package).
    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // FuzzSupport.swift, FuzzSupport, Sources, fuzz
        return url.path
    }()
}
