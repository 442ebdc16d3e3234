-- CreateIndex
CREATE INDEX "customers_created_at_idx" ON "customers"("created_at");
