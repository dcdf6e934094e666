"""Word lists the generated 1C base is made of.

Kept apart from the generator so the data module reads as rules, not as a dictionary. The lists are chosen to
exercise what real trade bases contain: Cyrillic everywhere, double quotes inside counterparty names, decimal
commas inside goods names, and comments with separators and line breaks that break naive CSV/log handling.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """A family of goods: names are `base [brand] variant pack`, the unit decides how quantities look."""

    prefix: str
    base: str
    variants: tuple[str, ...]
    packs: tuple[str, ...]
    unit: str
    brands: tuple[str, ...]
    roubles: tuple[int, int] = (50, 500)
    """Price range per unit, so milk costs like milk and paint like paint."""


FOOD_BRANDS = ('"Деревенское"', '"Вологодское"', '"Простор"', '"Северный край"', '"Домашнее"', '"Ладушки"')
TOOL_BRANDS = ('"СтройМастер"', '"ЭлектроТех"', '"Зубр-Про"', '"Уралметиз"', '"ТехноСвет"', '"Ремонтник"')

CATEGORIES: tuple[Category, ...] = (
    Category(
        "МЛК",
        "Молоко",
        ("2,5%", "3,2%", "3,5%", "6%"),
        ("0,9 л", "1 л", "1,4 л"),
        "шт",
        FOOD_BRANDS,
        (60, 140),
    ),
    Category("КФР", "Кефир", ("1%", "2,5%", "3,2%"), ("0,5 л", "0,9 л", "1 л"), "шт", FOOD_BRANDS, (60, 120)),
    Category(
        "СМТ",
        "Сметана",
        ("10%", "15%", "20%", "25%"),
        ("200 г", "300 г", "400 г"),
        "шт",
        FOOD_BRANDS,
        (70, 200),
    ),
    Category(
        "СХР",
        "Сахар-песок",
        ("белый", "тростниковый"),
        ("весовой", "мешок 50 кг"),
        "кг",
        FOOD_BRANDS,
        (60, 120),
    ),
    Category(
        "КРП",
        "Крупа гречневая",
        ("ядрица", "продел"),
        ("весовая", "мешок 25 кг"),
        "кг",
        FOOD_BRANDS,
        (80, 180),
    ),
    Category(
        "МКР",
        "Макароны",
        ("перья", "спагетти", "рожки", "ракушки"),
        ("400 г", "450 г", "1 кг"),
        "упак",
        FOOD_BRANDS,
        (50, 200),
    ),
    Category(
        "МСЛ",
        "Масло подсолнечное",
        ("рафинированное", "нерафинированное"),
        ("0,9 л", "1 л", "5 л"),
        "шт",
        FOOD_BRANDS,
        (120, 600),
    ),
    Category(
        "ЧАЙ",
        "Чай черный",
        ("байховый", "гранулированный", "с бергамотом"),
        ("25 пак.", "100 пак.", "250 г"),
        "упак",
        FOOD_BRANDS,
        (80, 500),
    ),
    Category(
        "ГВЗ",
        "Гвозди строительные",
        ("оцинкованные", "черные", "финишные"),
        ("50 мм", "70 мм", "100 мм", "120 мм"),
        "кг",
        TOOL_BRANDS,
        (150, 400),
    ),
    Category(
        "СМР",
        "Саморезы по дереву",
        ("3,5x25", "3,5x35", "4,2x51", "4,8x70"),
        ("200 шт", "500 шт", "1000 шт"),
        "упак",
        TOOL_BRANDS,
        (150, 900),
    ),
    Category(
        "КБЛ",
        "Кабель ВВГнг",
        ("2x1,5", "3x1,5", "3x2,5", "5x4"),
        ("LS", "FRLS", "ГОСТ"),
        "м",
        TOOL_BRANDS,
        (40, 300),
    ),
    Category(
        "АВТ",
        "Автоматический выключатель",
        ("C16", "C25", "C32", "B10"),
        ("1P", "2P", "3P"),
        "шт",
        TOOL_BRANDS,
        (300, 1500),
    ),
    Category(
        "КРС",
        "Краска фасадная",
        ("белая", "серая", "бежевая"),
        ("2,5 кг", "9 кг", "14 кг"),
        "шт",
        TOOL_BRANDS,
        (800, 6000),
    ),
    Category("ТРБ", "Труба ПНД", ("20 мм", "25 мм", "32 мм"), ("SDR11", "SDR17"), "м", TOOL_BRANDS, (30, 200)),
    Category(
        "ЛМП",
        "Лампа светодиодная",
        ("E27", "E14", "GU10"),
        ("7 Вт", "10 Вт", "15 Вт"),
        "шт",
        TOOL_BRANDS,
        (80, 400),
    ),
    Category(
        "ПРЧ",
        "Перчатки рабочие",
        ("х/б", "с ПВХ", "нитриловые"),
        ("размер 9", "размер 10"),
        "упак",
        TOOL_BRANDS,
        (40, 250),
    ),
)

LATIN_PREFIXES = ("PROD", "ITEM", "HW")

WAREHOUSES = (
    "wh-main",
    "wh-spb",
    "wh-ekb",
    "wh-nsk",
    "wh-kzn",
    "wh-nnov",
    "wh-smr",
    "wh-rnd",
    "wh-krd",
    "wh-vrn",
)

SUPPLIERS = (
    'ООО "Ромашка"',
    'ООО "Молочный край"',
    'АО "СтройМаркет"',
    'ООО "ЭлектроСнаб"',
    'ООО "Торговый дом "Северный""',
    "ИП Петров П.П.",
    'ЗАО "Агрокомплекс"',
    'ООО "ТехноСвет"',
)

CUSTOMERS = (
    "ИП Иванов И.И.",
    'ООО "Вектор"',
    "ИП Сидорова А.В.",
    'ООО "Магазин №5"',
    'АО "Уральская сеть"',
    'ООО "Ремонт и стройка"',
    "Смирнов С.С.",
    'ООО "Кафе "У дома""',
)

NOTES = (
    "Поставка по договору №{n}",
    "Срочно; оплата по факту",
    "Отгрузка, самовывоз",
    "Возврат тары; пересорт, см. акт",
    "Доставка до склада,\nразгрузка силами поставщика",
    "Плановая инвентаризация по распоряжению №{n}",
    "Акт расхождений приложен",
    "Счёт №{n}; НДС 20%",
    'Для клиента "Вектор", без упаковки',
    "Перемещение под заказ\nпокупателя",
)

DOCUMENT_PREFIXES: dict[str, str] = {
    "goods-receipt": "ПР",
    "shipment": "РС",
    "transfer": "ПМ",
    "adjustment-up": "ОП",
    "adjustment-down": "СП",
    "inventory": "ИН",
}
