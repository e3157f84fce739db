"""Real documents made in the tests: PDF (fpdf2), DOCX (python-docx), XLSX (openpyxl) and
PPTX (python-pptx), as bytes and as the data URLs chat file parts carry."""

from __future__ import annotations

import base64
import io

from sluice.documents import kinds


def make_pdf(pages: list[str]) -> bytes:
    """A PDF with one page per string (each string one line of text)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def make_docx(heading: str, paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    from docx import Document

    doc = Document()
    doc.add_heading(heading, level=1)
    for text in paragraphs:
        doc.add_paragraph(text)
    if table:
        grid = doc.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def make_xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def make_pptx(slides: list[tuple[str, str]], table: list[list[str]] | None = None) -> bytes:
    """Slides of a title and a body; ``table`` goes on the last slide."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = None
    for title, body in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    if table and slide is not None:
        grid = slide.shapes.add_table(
            len(table), len(table[0]), Inches(1), Inches(5), Inches(6), Inches(1)
        ).table
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def data_url(data: bytes, media_type: str = kinds.PDF) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def file_part(data: bytes, filename: str, media_type: str = kinds.PDF) -> dict[str, object]:
    """An OpenAI chat ``file`` part carrying ``data`` inline."""
    return {"type": "file", "file": {"file_data": data_url(data, media_type), "filename": filename}}


CORRUPT_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not a PDF body\n"
"""Starts like a PDF, then is not one (no cross-reference table, no trailer)."""
