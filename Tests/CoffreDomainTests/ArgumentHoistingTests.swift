import CoffreClient
import Testing

@Suite struct ArgumentHoistingTests {
    let options = ["--as": true, "--json": false, "--socket": true]

    @Test func globalOptionsMoveBehindCommandWords() {
        #expect(
            ArgumentHoisting.hoist(["--as", "patient:1", "--json", "doc", "list", "--class", "BIOLOGIE"], options: options)
                == ["doc", "list", "--class", "BIOLOGIE", "--as", "patient:1", "--json"])
    }

    @Test func afterIsUnchangedAndEqualsFormAndSeparatorAreKept() {
        #expect(ArgumentHoisting.hoist(["doc", "list", "--as", "x"], options: options) == ["doc", "list", "--as", "x"])
        #expect(ArgumentHoisting.hoist(["--socket=/s", "doc", "get", "id"], options: options) == ["doc", "get", "id", "--socket=/s"])
        #expect(
            ArgumentHoisting.hoist(["--json", "doc", "put", "--", "--as"], options: options) == ["doc", "put", "--json", "--", "--as"])
    }
}
