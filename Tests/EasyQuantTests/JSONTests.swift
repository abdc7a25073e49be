import XCTest
import EasyQuant

final class JSONTests: XCTestCase {
    func testParsesAndKeepsOrderAndExactIntegers() throws {
        let v = try JSONValue.parse(#"{"b": [1, -2, 3.5e1], "a": {"x": null, "y": true}, "big": 9007199254740993}"#)
        XCTAssertEqual(v.objectMembers?.map(\.key), ["b", "a", "big"])
        XCTAssertEqual(v["b"], [1, -2, .double(35)])
        XCTAssertEqual(v["big"]?.intValue, 9007199254740993)
        XCTAssertEqual(v.serialized(), #"{"b":[1,-2,35.0],"a":{"x":null,"y":true},"big":9007199254740993}"#)
    }

    func testStringEscapesRoundTrip() throws {
        let v = try JSONValue.parse(#""a\"b\\c\n\u00e9\ud83d\ude00\u0001""#)
        XCTAssertEqual(v.stringValue, "a\"b\\c\né😀\u{1}")
        XCTAssertEqual(try JSONValue.parse(v.serialized()), v)
    }

    func testErrorsCarryByteOffsets() {
        func offset(_ text: String) -> Int? {
            do { _ = try JSONValue.parse(text); return nil } catch let e as JSONParseError { return e.offset } catch { return nil }
        }
        XCTAssertEqual(offset(#"{"a": 1, "a": 2}"#), 9)  // duplicate key
        XCTAssertEqual(offset("[1, 2"), 5)
        XCTAssertEqual(offset("01"), 0)
        XCTAssertEqual(offset("{} x"), 3)
        XCTAssertEqual(offset(#""\ud800""#), 7)
        XCTAssertNotNil(offset(String(repeating: "[", count: 1000)))
        XCTAssertNil(offset(" {\"k\": [] } "))
    }

    func testRejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        XCTAssertThrowsError(try JSONValue.parse(bytes))
    }
}
