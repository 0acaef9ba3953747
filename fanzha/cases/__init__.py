"""Cases (警情), public reports (举报线索) and warning tasks (预警劝阻): domain rules without SQL or HTTP."""
