"""The observation's listings read from Kaltura's XML (read.listing, to_observed, to_flavor):
text fields become the same facts a client object gave, and an element left out (ignoreNull)
is the field's default."""

from lxml import etree

from controller.adapters.kaltura.read import fields_of, listing, to_flavor, to_observed

LIST = b"""<result><objectType>KalturaFlavorAssetListResponse</objectType><objects>
<item><objectType>KalturaFlavorAsset</objectType><id>0_f1</id><entryId>0_e</entryId>
<isOriginal>1</isOriginal><status>2</status><size>2048</size><fileExt>mp4</fileExt></item>
<item><objectType>KalturaFlavorAsset</objectType><id>0_f2</id><entryId>0_e</entryId>
<isOriginal>0</isOriginal><sizeInBytes>5000</sizeInBytes></item>
</objects><totalCount>7</totalCount></result>"""


def test_listing_reads_each_item_and_the_total() -> None:
    items, total = listing(etree.fromstring(LIST))
    assert total == 7
    original, other = (to_flavor(item) for item in items)
    assert (original.flavor_id, original.is_original, original.status) == ("0_f1", True, 2)
    assert original.size_bytes == 2048 * 1024  # size is in KB when sizeInBytes is left out
    assert (other.is_original, other.size_bytes, other.status) == (False, 5000, -1)


def test_an_entry_with_fields_left_out_takes_the_defaults() -> None:
    (item,), _ = listing(etree.fromstring(
        b"<result><objects><item><id>0_e</id><createdAt>1700000000</createdAt>"
        b"<tags>Lecture, karchive</tags><name/></item></objects></result>"))
    entry = to_observed(item)
    assert (entry.entry_id, entry.created_at, entry.name) == ("0_e", 1_700_000_000, "")
    assert entry.tags == frozenset({"lecture", "karchive"})
    assert (entry.media_type, entry.last_played_at, entry.replacing_entry_id) == (1, None, None)


def test_a_client_object_reads_the_same_as_its_xml() -> None:
    class Asset:  # a client object's attributes: typed values, not text
        id, entryId, isOriginal, status, sizeInBytes = "0_f1", "0_e", False, 2, 5000

    assert to_flavor(fields_of(Asset(), "id,entryId,isOriginal,status,sizeInBytes,size")) == \
        to_flavor({"id": "0_f1", "entryId": "0_e", "isOriginal": "0", "status": "2",
                   "sizeInBytes": "5000"})
