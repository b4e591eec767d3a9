from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter

from pixelfleet.jobs.catalogue import Catalogue, catalogue

router = APIRouter(prefix="/v1", tags=["tasks"])


# Each parameter schema is sent with the keywords it has, not every one the model knows.
@router.get("/operations", response_model=Catalogue, response_model_exclude_unset=True)
async def list_operations() -> Catalogue:
    """Every operation a pipeline may use, its parameters (JSON Schema) and its price in credits."""
    return _catalogue()


@lru_cache(maxsize=1)
def _catalogue() -> Catalogue:
    return catalogue()
