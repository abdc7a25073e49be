import EasyQuant
import FuzzSupport

/// Target (c): the JSON parser. What it accepts must survive a round trip through both
/// writers unchanged; what it refuses must get an error with an offset inside the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Fuzz.bytes(data, size)
    let value: JSONValue
    do {
        value = try JSONValue.parse(bytes)
    } catch let e as JSONParseError {
        Fuzz.check(e, named: nil)
        Fuzz.require(e.offset >= 0 && e.offset <= size, "error offset \(e.offset) outside the \(size)-byte input")
        return 0
    } catch {
        fatalError("JSON parsing threw a \(type(of: error)): \(error)")
    }
    let compact = value.serialized()
    Fuzz.require((try? JSONValue.parse(compact)) == value, "compact round trip changed the value: \(compact)")
    Fuzz.require((try? JSONValue.parse(value.prettyPrinted())) == value, "pretty round trip changed the value")
    return 0
}
