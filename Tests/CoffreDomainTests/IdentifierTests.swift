import CoffreDomain
import Foundation
import Testing

@Suite struct IdentifierTests {
    @Test(arguments: ["184056312345658", "269029934173285"])
    func validINS(_ text: String) {
        #expect(INS(text)?.value == text)
    }

    @Test func insKeyIsChecked() {
        #expect(INS("184056312345659") == nil)
        #expect(INS("18405631234565") == nil)
        #expect(INS("1840563123456580") == nil)
        #expect(INS("18405631234565a") == nil)
        #expect(INS("../../etc/passw") == nil)
        #expect(INS("") == nil)
    }

    @Test func corsicanINSUseTheSubstitutedKey() throws {
        // NIR 1 84 05 2A 123 456: key computed with 2A → 19.
        let key2A = 97 - Int(UInt64("1840519123456")! % 97)
        let ins2A = "184052A123456" + String(format: "%02d", key2A)
        #expect(INS(ins2A) != nil)
        #expect(INS(ins2A.lowercased())?.value == ins2A)
        let key2B = 97 - Int(UInt64("1840518123456")! % 97)
        #expect(INS("184052B123456" + String(format: "%02d", key2B)) != nil)
        // 2A elsewhere than the department is not a NIR.
        #expect(INS("2A4052112345699") == nil)
    }

    @Test func insNeverPrintsItself() {
        let ins = INS("184056312345658")!
        #expect(!"\(ins)".contains("184056"))
    }

    @Test func rppsLuhn() {
        #expect(RPPS("10003123457") != nil || RPPS.withCheckDigit("1000312345") != nil)
        let valid = RPPS.withCheckDigit("1000312345")!
        #expect(RPPS(valid.value) == valid)
        let last = valid.value.last!.wholeNumberValue!
        #expect(RPPS(String(valid.value.dropLast()) + String((last + 1) % 10)) == nil)
        #expect(RPPS("1234567890") == nil)
        #expect(RPPS("1000312345a") == nil)
    }

    @Test func opaqueIdentifiersAreSafePathComponents() {
        #expect(DocumentID("0123456789abcdef0123456789abcdef") != nil)
        for bad in [
            "0123456789ABCDEF0123456789abcdef", "../3456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcde", "",
            "0123456789abcdef0123456789abcdef0", "0123456789abcdef0123456789abcde/",
        ] {
            #expect(DocumentID(bad) == nil, "\(bad)")
        }
    }

    @Test func careDates() {
        #expect(CareDate("2024-02-29") != nil)
        #expect(CareDate("2023-02-29") == nil)
        #expect(CareDate("2024-13-01") == nil)
        #expect(CareDate("2024-1-01") == nil)
        #expect(CareDate("24-01-01") == nil)
        #expect(CareDate("2024-01-+1") == nil)
    }

    @Test func documentClassesMapToDMPClassCodes() {
        #expect(DocumentClass(rawValue: "BIOLOGIE")?.dmpClassCode == "10")
        #expect(DocumentClass(rawValue: "ORD_SOIN")?.dmpClassCode == "42")
        #expect(DocumentClass(rawValue: "RADIO_SC")?.dmpClassCode == "31")
        #expect(DocumentClass(rawValue: "SYNTHESE")?.dmpClassCode == "11")
        #expect(DocumentClass(rawValue: "CERT_MED")?.dmpClassCode == "52")
        #expect(DocumentClass(rawValue: "biologie") == nil)
    }
}

/// What an upload's metadata headers may hold.
@Suite struct UploadFieldsTests {
    @Test func titlesAreDecodedAndBounded() {
        #expect(UploadFields.title(percentEncoded: "Compte%20rendu%20op%C3%A9ratoire") == "Compte rendu opératoire")
        #expect(UploadFields.title(percentEncoded: "%ZZ") == nil)
        #expect(UploadFields.title(percentEncoded: "a%0Ab") == nil)  // a control character
        #expect(UploadFields.title(percentEncoded: String(repeating: "a", count: 513)) == nil)
        #expect(UploadFields.title(percentEncoded: String(repeating: "a", count: 512)) != nil)
    }

    @Test func typeCodesHiddenFlagsAndMediaTypes() {
        #expect(UploadFields.isValidTypeCode("11502-2"))
        #expect(!UploadFields.isValidTypeCode("11502 2"))
        #expect(!UploadFields.isValidTypeCode(""))
        #expect(UploadFields.hiddenFrom("patient, representatives")! == (true, true))
        #expect(UploadFields.hiddenFrom(" ,patient")! == (true, false))
        #expect(UploadFields.hiddenFrom("everyone") == nil)
        #expect(UploadFields.isValidMediaType("application/pdf"))
        #expect(!UploadFields.isValidMediaType("pdf"))
    }
}
