import CLibCrypto
import Foundation

/// SHA-256 through OpenSSL's libcrypto, which uses the CPU's SHA instructions where present:
/// hashing the source model for provenance must not cost more than quantizing it.
public struct SHA256Hasher {
    private var context: OpaquePointer

    public init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    /// Finishes and returns the digest as lowercase hex.
    public mutating func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        EVP_MD_CTX_free(context)
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    /// The SHA-256 of a byte buffer, as lowercase hex.
    public static func hex(of bytes: UnsafeRawBufferPointer) -> String {
        var h = SHA256Hasher()
        h.update(bytes)
        return h.finalizeHex()
    }

    /// The SHA-256 of a file, read in 4 MiB pieces (not mapped, so it adds nothing to RSS).
    public static func hex(ofFile path: String) throws -> String {
        let (fd, _) = try InputFile.openRegular(path)
        defer { close(fd) }
        var h = SHA256Hasher()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            h.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return h.finalizeHex()
    }
}
