-- AlterTable
ALTER TABLE "customers" ADD COLUMN     "country" TEXT NOT NULL DEFAULT 'NG';
