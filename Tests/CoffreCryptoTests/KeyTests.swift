import CoffreCrypto
import Testing

@Suite struct KeyTests {
    let arena: SecureArena

    init() throws { arena = try SecureArena(slotCount: 16) }

    @Test func wrapUnwrapRoundTripBindsContext() throws {
        let master = try SymmetricKey.random(in: arena)
        let dossierKey = try SymmetricKey.random(in: arena)
        let context = WrapContext(purpose: "dossier-key", owners: ["aa"], wrappingKeyVersion: 1)
        let wrapped = KeyWrap.wrap(dossierKey, with: master, context: context)
        #expect(wrapped.count == KeyWrap.wrappedByteCount)
        #expect(wrapped[0] == KeyWrap.version)
        #expect(try KeyWrap.unwrap(wrapped, with: master, context: context, in: arena) == dossierKey)

        for other in [
            WrapContext(purpose: "dossier-key", owners: ["ab"], wrappingKeyVersion: 1),
            WrapContext(purpose: "dossier-key", owners: ["aa"], wrappingKeyVersion: 2),
            WrapContext(purpose: "document-key", owners: ["aa"], wrappingKeyVersion: 1),
            // Length prefixes keep ["a", "ab"] and ["aa", "b"] apart.
            WrapContext(purpose: "dossier-key", owners: ["a", "a"], wrappingKeyVersion: 1),
        ] {
            #expect(throws: CryptoError.authenticationFailed) { try KeyWrap.unwrap(wrapped, with: master, context: other, in: arena) }
        }
        let otherMaster = try SymmetricKey.random(in: arena)
        #expect(throws: CryptoError.authenticationFailed) { try KeyWrap.unwrap(wrapped, with: otherMaster, context: context, in: arena) }
        var tampered = wrapped
        tampered[40] ^= 0x80
        #expect(throws: CryptoError.authenticationFailed) { try KeyWrap.unwrap(tampered, with: master, context: context, in: arena) }
    }

    @Test func sealedBoxRoundTripAndBinding() throws {
        let key = try SymmetricKey.random(in: arena)
        let sealed = SealedBox.seal(Array("Bilan sanguin".utf8), with: key, associatedData: [1])
        #expect(try SealedBox.open(sealed, with: key, associatedData: [1]) == Array("Bilan sanguin".utf8))
        #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(sealed, with: key, associatedData: [2]) }
        #expect(try SealedBox.open(SealedBox.seal([], with: key, associatedData: []), with: key, associatedData: []) == [])
    }

    @Test func arenaSlotsAreReusedAndBounded() throws {
        let small = try SecureArena(slotCount: 2)
        var first: SymmetricKey? = try SymmetricKey.random(in: small)
        let second = try SymmetricKey.random(in: small)
        #expect(small.availableSlots == 0)
        #expect(throws: CryptoError.arenaExhausted) { try SymmetricKey.random(in: small) }
        first = nil
        #expect(small.availableSlots == 1)
        let third = try SymmetricKey.random(in: small)
        #expect(third != second)
        _ = first
    }

    @Test func keyedHashDependsOnKeyAndDomain() throws {
        let key = try SymmetricKey.random(in: arena)
        let other = try SymmetricKey.random(in: arena)
        let message = Array("184056312345658".utf8)
        let digest = KeyedHash.digest(message, domain: "ins", key: key)
        #expect(digest.count == 32)
        #expect(digest == KeyedHash.digest(message, domain: "ins", key: key))
        #expect(digest != KeyedHash.digest(message, domain: "ins", key: other))
        #expect(digest != KeyedHash.digest(message, domain: "other", key: key))
    }

    @Test func ed25519SignsAndVerifies() throws {
        let signer = try Ed25519SigningKey(seed: Ed25519SigningKey.generateSeed(), in: arena)
        let signature = signer.sign([1, 2, 3])
        #expect(signer.publicKey.isValidSignature(signature, for: [1, 2, 3]))
        #expect(!signer.publicKey.isValidSignature(signature, for: [1, 2, 4]))
        #expect(!signer.publicKey.isValidSignature(Array(signature.dropLast()), for: [1, 2, 3]))
    }

    @Test func encodings() {
        #expect(Hex.encode([0x00, 0xAB, 0xFF]) == "00abff")
        #expect(Hex.decode("00abFF") == [0x00, 0xAB, 0xFF])
        #expect(Hex.decode("0") == nil)
        #expect(Hex.decode("zz") == nil)
        for bytes in [[], [0], [1, 2], [1, 2, 3], Array(0...255)] as [[UInt8]] {
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(Base64URL.decode("a+b/") == nil)
        #expect(Base64URL.decode("AAA=") == nil)
        #expect(SHA256Hasher.hash(Array("abc".utf8)) == Hex.decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
    }
}
