"""`onec-etl odata inspect`: a base's `$metadata` against the candidate models (defaults, shipped, configured)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from onec.cli import main
from onec.odata_inspect import Metadata, inspect, read_metadata, report
from onec.sandbox import SandboxConfig, SandboxData, SandboxEngine, SandboxTransport
from onec.sources.odata_model import OdataModel
from onec.sources.xml_safety import XmlFileError

ROOT = "http://sandbox/trade/odata/standard.odata/"


@pytest.fixture(scope="module")
def data() -> SandboxData:
    return SandboxData.generate(seed=3, documents=60)


def _sandbox_metadata(data: SandboxData, configuration: str) -> bytes:
    engine = SandboxEngine(data, SandboxConfig(odata_configuration=configuration))
    return SandboxTransport(engine).handle_request(httpx.Request("GET", f"{ROOT}$metadata")).read()


@pytest.mark.parametrize(("configuration", "model"), [("standard", "standard"), ("ut11", "ut11")])
def test_each_sandbox_configuration_fits_its_model_whole(data: SandboxData, configuration: str, model: str) -> None:
    fits = inspect(read_metadata(_sandbox_metadata(data, configuration)))
    assert (fits[0].name, fits[0].share, fits[0].missing) == (model, 1.0, ())
    assert all(other.share < 0.5 for other in fits[1:])


def _ut11_edmx(*, recount: bool, packs: bool) -> bytes:
    """A $metadata in 1C's shape (entity types with properties, tabular rows as complex `_RowType`s, the
    container's entity sets), of a УТ 11 base that may lack the recount document or the packs' ratio."""

    def entity(name: str, props: str, row_type: str | None = None) -> str:
        fields = "".join(f'<Property Name="{p}" Type="Edm.String" Nullable="true"/>' for p in props.split())
        lines = f'<Property Name="Товары" Type="Collection(StandardODATA.{row_type})"/>' if row_type else ""
        return f'<EntityType Name="{name}"><Key><PropertyRef Name="Ref_Key"/></Key>{fields}{lines}</EntityType>'

    def row(name: str, props: str) -> str:
        fields = "".join(f'<Property Name="{p}" Type="Edm.Double"/>' for p in props.split())
        return f'<ComplexType Name="{name}">{fields}</ComplexType>'

    header = "Ref_Key DataVersion Number Date Posted DeletionMark Склад_Key Контрагент_Key Комментарий"
    transfer = "Ref_Key Number Date Posted DeletionMark СкладОтправитель_Key СкладПолучатель_Key Комментарий"
    documents = {
        "ПриобретениеТоваровУслуг": (header, "Цена Сумма"),
        "РеализацияТоваровУслуг": (header, "Цена Сумма"),
        "ПеремещениеТоваров": (transfer, ""),
        "ОприходованиеИзлишковТоваров": (header, "Цена Сумма"),
        "СписаниеНедостачТоваров": (header, ""),
    }
    if recount:
        documents["ПересчетТоваров"] = (header, "КоличествоФакт")
    types = [
        entity("Catalog_Склады", "Ref_Key Code Description DeletionMark"),
        entity("Catalog_Контрагенты", "Ref_Key Code Description"),
        entity("Catalog_Номенклатура", "Ref_Key Code Description Артикул ЕдиницаИзмерения_Key IsFolder"),
        entity("Catalog_УпаковкиЕдиницыИзмерения", "Ref_Key Description" + (" Числитель Знаменатель" * packs)),
        entity("AccumulationRegister_ТоварыНаСкладах_RecordType", "Номенклатура_Key Склад_Key ВНаличии"),
    ]
    sets = [name for name in ("Catalog_Склады", "Catalog_Контрагенты", "Catalog_Номенклатура",
                              "Catalog_УпаковкиЕдиницыИзмерения")]  # fmt: skip
    for name, (props, priced) in documents.items():
        full = f"Document_{name}"
        types.append(entity(full, props, f"{full}_Товары_RowType"))
        types.append(row(f"{full}_Товары_RowType", f"LineNumber Номенклатура_Key Упаковка_Key Количество {priced}"))
        sets.append(full)
    container = "".join(f'<EntitySet Name="{s}" EntityType="StandardODATA.{s}"/>' for s in sets)
    container += (
        '<EntitySet Name="AccumulationRegister_ТоварыНаСкладах"'
        ' EntityType="StandardODATA.AccumulationRegister_ТоварыНаСкладах_RecordType"/>'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<edmx:Edmx xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" Version="1.0">'
        '<edmx:DataServices xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"'
        ' m:DataServiceVersion="3.0"><Schema xmlns="http://schemas.microsoft.com/ado/2009/11/edm"'
        f' Namespace="StandardODATA">{"".join(types)}'
        f'<EntityContainer Name="EnterpriseV8" m:IsDefaultEntityContainer="true">{container}</EntityContainer>'
        "</Schema></edmx:DataServices></edmx:Edmx>"
    ).encode()


def test_a_ut11_base_fits_ut11_and_its_gaps_are_named() -> None:
    whole = inspect(read_metadata(_ut11_edmx(recount=True, packs=True)))
    assert (whole[0].name, whole[0].missing) == ("ut11", ())
    fits = inspect(read_metadata(_ut11_edmx(recount=False, packs=False)))
    assert fits[0].name == "ut11"
    assert set(fits[0].missing) == {
        "Catalog_УпаковкиЕдиницыИзмерения: Числитель, Знаменатель",
        "Document_ПересчетТоваров (not published)",
        "Document_ПересчетТоваров.Товары (not published)",
    }


def test_a_configured_model_is_a_candidate(tmp_path: Path) -> None:
    model = tmp_path / "mine.toml"
    model.write_text('[documents.inventory]\nentity_set = "Document_Нет"\n', "utf-8")
    metadata = read_metadata(_ut11_edmx(recount=True, packs=True))
    names = [f.name for f in inspect(metadata, model)]
    assert f"ONEC_ODATA_MODEL ({model})" in names
    assert OdataModel.load(model).documents["inventory"].entity_set == "Document_Нет"


def test_metadata_is_parsed_hardened() -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><edmx:Edmx xmlns:edmx="e">&a;</edmx:Edmx>'
    with pytest.raises(XmlFileError, match="DOCTYPE"):
        read_metadata(hostile)


def test_report_names_the_model_to_use() -> None:
    metadata = read_metadata(_ut11_edmx(recount=False, packs=True))
    text = report(metadata, inspect(metadata))
    assert "Best fit: ut11" in text and "ONEC_ODATA_MODEL=ut11" in text
    assert "Document_ПересчетТоваров (not published)" in text
    assert isinstance(metadata, Metadata)


def test_cli_inspects_a_saved_file_and_the_embedded_sandbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = tmp_path / "metadata.xml"
    saved.write_bytes(_ut11_edmx(recount=True, packs=True))
    assert main(["odata", "inspect", "--metadata", str(saved)]) == 0
    assert "Best fit: ut11" in capsys.readouterr().out
    monkeypatch.setenv("ONEC_SANDBOX_DOCUMENTS", "60")
    monkeypatch.setenv("ONEC_RATE_LIMIT", "1000000")
    assert main(["odata", "inspect"]) == 0
    assert "Best fit: standard" in capsys.readouterr().out
    saved.write_bytes(b'<edmx:Edmx xmlns:edmx="e"><broken')
    assert main(["odata", "inspect", "--metadata", str(saved)]) == 1
    assert "malformed" in capsys.readouterr().err
